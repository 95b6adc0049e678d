"""MovieLens: fetch (GroupLens, a mirror, a local zip or folder), verify, cache and parse.

Every dataset ends in one normal form (:class:`MovieLensData`): ``ratings`` with compact dtypes in
file order (the ml-100k canonical folds are consecutive blocks of ``u.data``) and ``movies`` with a
clean title, a nullable year and a tuple of genre names.

A download lands in a temporary file inside ``cache_dir``, is checked against the MD5 GroupLens
publishes next to the archive when there is one, extracted member by member into a temporary
folder (nothing may escape it), parsed and checked, and only then renamed to ``cache_dir/<name>``.
So a folder under that name is always a verified copy, and a second run never needs the network.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recommender.core.config import GROUPLENS_BASE_URL
from recommender.core.types import DATASETS, DatasetInfo, RatingScale
from recommender.data import fetch
from recommender.data.titles import parse_title

if TYPE_CHECKING:
    from recommender.core.config import Settings

__all__ = [
    "GROUPLENS",
    "DatasetError",
    "MovieLensData",
    "load_from_settings",
    "load_movielens",
    "parse_title",
    "read_dataset_folder",
]

log = logging.getLogger(__name__)

GROUPLENS = GROUPLENS_BASE_URL
#: Rows per chunk when reading ratings: big enough to be fast, small enough to keep 25M rows < 1 GiB.
CHUNK_ROWS = 2_000_000
_SOURCE_MARKER = ".moviebot-source.json"

# ml-100k's u.item carries 19 genre flags; u.genre names them, this is the fallback if it is missing.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
_NO_GENRE = {"(no genres listed)", "unknown", ""}
# The ml-1m README says "approximately 3,900 movies" while movies.dat holds 3,883: allow that much.
_MOVIE_COUNT_TOLERANCE = {"ml-1m": 0.02}
# MD5s GroupLens publishes for its frozen releases, used when the .md5 file itself can't be fetched
# from GroupLens (types.DATASETS' zip_md5 wins if set). The "latest" sets change, so they have none.
_OFFICIAL_MD5 = {
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
    "ml-20m": "cd245b17a1ae2cc31bb14903e1204af3",
    "ml-25m": "6b51fb2759a8657d3bfcbfc42b592ada",
}


class DatasetError(Exception):
    """A dataset could not be fetched or failed a check; the message says what, where and what to do."""


@dataclass(frozen=True, eq=False)
class MovieLensData:
    """One MovieLens dataset in normal form (see the module docstring)."""

    name: str
    info: DatasetInfo
    path: Path
    ratings: pd.DataFrame
    movies: pd.DataFrame

    @property
    def scale(self) -> RatingScale:
        return self.info.scale


@dataclass(frozen=True)
class _Layout:
    ratings: str
    movies: str
    kind: str  # "100k" | "dat" | "csv"


def _layout(name: str) -> _Layout:
    if name == "ml-100k":
        return _Layout("u.data", "u.item", "100k")
    if name == "ml-1m":
        return _Layout("ratings.dat", "movies.dat", "dat")
    return _Layout("ratings.csv", "movies.csv", "csv")


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"{name!r} is not a MovieLens dataset I know; use one of {known}") from None


def _check_header(path: Path, sep: str, expected: list[str] | None, n_fields: int, remedy: str) -> None:
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8", "replace").rstrip("\r\n")
    fields = first.split(sep)
    if expected is not None and fields != expected:
        raise DatasetError(
            f"{path}: expected the columns {','.join(expected)} but the header is {first!r}; "
            f"this is not a MovieLens {path.name} file. {remedy}"
        )
    if expected is None and len(fields) != n_fields:
        raise DatasetError(
            f"{path}: expected {n_fields} fields per line but line 1 has {len(fields)} ({first!r}); "
            f"this is not a MovieLens {path.name} file. {remedy}"
        )


def _count_lines(path: Path) -> int:
    """Upper bound on data rows, so the ratings arrays are allocated once (no 2x peak on concat)."""
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 24):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _id_table(ids: np.ndarray) -> np.ndarray:
    """``table[min(max(i, -1), top + 1) + 1]`` is True iff ``i`` is in ``ids``; cheaper than np.isin."""
    top = int(ids.max()) if len(ids) else 0
    table = np.zeros(top + 3, dtype=bool)  # slot 0: negative ids, slot top + 2: ids above the range
    table[ids[ids >= 0] + 1] = True
    return table


def _lookup(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return table[np.clip(ids.astype(np.int64), -1, len(table) - 2) + 1]


def _read_ratings(
    path: Path,
    name: str,
    scale: RatingScale,
    *,
    sep: str,
    header: bool,
    remedy: str,
    movies: tuple[str, np.ndarray],
) -> pd.DataFrame:
    """Read a ratings table in chunks into preallocated compact arrays, checking every row.

    Every rating must be on the scale and every movie in the movies file (``movies`` = its name
    and ids): the catalog and the content model rely on both.
    """
    expected = ["userId", "movieId", "rating", "timestamp"] if header else None
    _check_header(path, sep, expected, 4, remedy)
    source: Path | object = path
    if sep == "::":  # the C parser needs a one-character separator; ratings.dat is only digits
        import io

        source = io.BytesIO(path.read_bytes().replace(b"::", b"\t"))
        sep = "\t"
    capacity = _count_lines(path)
    users = np.empty(capacity, np.int32)
    movie_ids = np.empty(capacity, np.int32)
    stars = np.empty(capacity, np.float32)
    stamps = np.empty(capacity, np.int64)
    dtypes = {"user_id": "int32", "movie_id": "int32", "rating": "float32", "timestamp": "int64"}
    known = _id_table(movies[1])
    n, first_unknown, n_unknown = 0, None, 0
    try:
        reader = pd.read_csv(
            source, sep=sep, header=None, skiprows=1 if header else 0, names=list(dtypes),
            dtype=dtypes, chunksize=CHUNK_ROWS, engine="c",
        )  # fmt: skip
        for chunk in reader:
            r = chunk["rating"].to_numpy()
            steps = (r - scale.minimum) / scale.step
            bad = (r < scale.minimum) | (r > scale.maximum) | (np.abs(steps - np.round(steps)) > 1e-4)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                line = n + i + 1 + int(header)
                raise DatasetError(
                    f"{path}: line {line}: rating {float(r[i]):g} is outside {name}'s scale "
                    f"({scale.describe()}); this is not a genuine {name} ratings file. {remedy}"
                )
            k = len(chunk)
            rated = chunk["movie_id"].to_numpy()
            unknown = ~_lookup(known, rated)
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                first_unknown = first_unknown or (n + i + 1 + int(header), int(rated[i]))
                n_unknown += int(unknown.sum())
            users[n : n + k] = chunk["user_id"].to_numpy()
            movie_ids[n : n + k] = rated
            stars[n : n + k] = r
            stamps[n : n + k] = chunk["timestamp"].to_numpy()
            n += k
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DatasetError(f"{path}: could not parse the ratings ({detail}). {remedy}") from None
    if first_unknown is not None:
        line, movie_id = first_unknown
        raise DatasetError(
            f"{path}: line {line}: movie {movie_id} is not in {movies[0]} "
            f"({n_unknown:,} ratings are for unknown movies). {remedy}"
        )
    # copy=False keeps the views: slicing must not duplicate 25M rows at the end.
    return pd.DataFrame(
        {"user_id": users[:n], "movie_id": movie_ids[:n], "rating": stars[:n], "timestamp": stamps[:n]},
        copy=False,
    )


def _movies_frame(rows: list[tuple[int, str, int | None, tuple[str, ...]]]) -> pd.DataFrame:
    ids, titles, years, genres = zip(*rows, strict=True) if rows else ((), (), (), ())
    frame = pd.DataFrame(
        {
            "movie_id": np.asarray(ids, dtype=np.int32),
            "title": pd.Series(titles, dtype=str),
            "year": pd.array(list(years), dtype="Int64"),
        }
    )
    genre_col = np.empty(len(rows), dtype=object)
    genre_col[:] = list(genres) if rows else []
    frame["genres"] = genre_col
    return frame


def _split_genres(text: str) -> tuple[str, ...]:
    return tuple(g for g in text.strip().split("|") if g not in _NO_GENRE)


def _bad_line(path: Path, line: int, what: str, remedy: str) -> DatasetError:
    return DatasetError(f"{path}: line {line}: {what}; this is not a MovieLens {path.name} file. {remedy}")


def _read_movies_100k(folder: Path, remedy: str) -> pd.DataFrame:
    genre_file = folder / "u.genre"
    names = list(ML100K_GENRES)
    if genre_file.is_file():
        pairs = [ln.split("|") for ln in genre_file.read_text("latin-1").splitlines() if ln.strip()]
        try:
            names = [p[0] for p in sorted(pairs, key=lambda p: int(p[1]))]
        except (ValueError, IndexError):
            raise DatasetError(f"{genre_file}: expected lines of 'genre|number'. {remedy}") from None
    path = folder / "u.item"
    rows = []
    for number, line in enumerate(path.read_text("latin-1").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5 + len(names):
            raise _bad_line(path, number, f"expected {5 + len(names)} fields, found {len(fields)}", remedy)
        try:
            movie_id, flags = int(fields[0]), [int(f) for f in fields[5:]]
        except ValueError:
            raise _bad_line(path, number, "the movie id or a genre flag is not a number", remedy) from None
        title, year = parse_title(fields[1])
        if year is None and (date := re.search(r"\d{4}$", fields[2].strip())):
            year = int(date.group())  # the release-date column, e.g. "01-Jan-1995"
        genres = tuple(g for g, on in zip(names, flags, strict=True) if on and g not in _NO_GENRE)
        rows.append((movie_id, title, year, genres))
    return _movies_frame(rows)


def _read_movies_dat(folder: Path, remedy: str) -> pd.DataFrame:
    path = folder / "movies.dat"
    rows = []
    for number, line in enumerate(path.read_text("latin-1").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise _bad_line(path, number, "expected MovieID::Title::Genres", remedy)
        title, year = parse_title(fields[1])
        rows.append((int(fields[0]), title, year, _split_genres(fields[2])))
    return _movies_frame(rows)


def _read_movies_csv(folder: Path, remedy: str) -> pd.DataFrame:
    import csv

    path = folder / "movies.csv"
    _check_header(path, ",", ["movieId", "title", "genres"], 3, remedy)
    rows = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != 3 or not fields[0].strip().isdigit():
                    raise _bad_line(path, reader.line_num, "expected movieId,title,genres", remedy)
                title, year = parse_title(fields[1])
                rows.append((int(fields[0]), title, year, _split_genres(fields[2])))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: is not UTF-8 ({exc.reason} at byte {exc.start}). {remedy}") from None
    return _movies_frame(rows)


def _n_distinct(ids: np.ndarray) -> int:
    # Ids are small positive ints: a presence table needs no hashing and no 25M-row temporaries.
    if len(ids) and ids.min() >= 0 and ids.max() < 1 << 28:
        seen = np.zeros(int(ids.max()) + 1, dtype=bool)
        seen[ids] = True
        return int(seen.sum())
    return len(np.unique(ids))


def _check_counts(name: str, folder: Path, data: MovieLensData, remedy: str, strict: bool) -> None:
    info = data.info
    found = {
        "ratings": (len(data.ratings), info.n_ratings, 0.0),
        "users": (_n_distinct(data.ratings["user_id"].to_numpy()), info.n_users, 0.0),
        "movies": (len(data.movies), info.n_movies, _MOVIE_COUNT_TOLERANCE.get(name, 0.0)),
    }
    for what, (n, expected, tolerance) in found.items():
        if expected is not None and abs(n - expected) > tolerance * expected:
            message = (
                f"{folder}: found {n:,} {what} but the {name} README states {expected:,}; "
                f"the copy is incomplete or from another release. {remedy}"
            )
            if strict:
                raise DatasetError(message)
            log.info("strict_counts is off: %s", message)


def _locate(root: Path, name: str) -> tuple[Path, list[str]]:
    """Find the dataset's files in ``root``, ``root/<name>`` or a lone subfolder.

    Returns the folder and the files missing from it (empty when complete); when no folder is
    complete, the closest one, so that the error names exactly what is missing.
    """
    layout = _layout(name)
    needed = (layout.ratings, layout.movies)
    candidates = [root, root / name]
    if root.is_dir():
        subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        if len(subdirs) == 1:
            candidates.append(subdirs[0])
    closest: tuple[Path, list[str]] = (root, list(needed))
    for folder in candidates:
        missing = [f for f in needed if not (folder / f).is_file()]
        if not missing:
            return folder, []
        if len(missing) < len(closest[1]):
            closest = (folder, missing)
    return closest


def read_dataset_folder(
    name: str, folder: Path, *, strict_counts: bool = True, remedy: str | None = None
) -> MovieLensData:
    """Parse and check an extracted dataset folder (``folder`` or its ``<name>`` subfolder)."""
    info, layout = _info(name), _layout(name)
    remedy = remedy or f"Point MOVIELENS_PATH at a complete {name} folder or zip."
    data_dir, missing = _locate(Path(folder), name)
    if missing:
        raise DatasetError(
            f"{data_dir}: {' and '.join(missing)} missing (a {name} folder holds {layout.ratings} and "
            f"{layout.movies}). {remedy}"
        )
    if layout.kind == "100k":
        movies = _read_movies_100k(data_dir, remedy)
        sep, header = "\t", False
    elif layout.kind == "dat":
        movies = _read_movies_dat(data_dir, remedy)
        sep, header = "::", False
    else:
        movies = _read_movies_csv(data_dir, remedy)
        sep, header = ",", True
    if not movies["movie_id"].is_unique:
        dup = int(movies["movie_id"][movies["movie_id"].duplicated()].iloc[0])
        raise DatasetError(f"{data_dir / layout.movies}: movie id {dup} appears twice. {remedy}")
    ratings = _read_ratings(
        data_dir / layout.ratings, name, info.scale, sep=sep, header=header, remedy=remedy,
        movies=(layout.movies, movies["movie_id"].to_numpy()),
    )  # fmt: skip
    data = MovieLensData(name=name, info=info, path=data_dir, ratings=ratings, movies=movies)
    _check_counts(name, data_dir, data, remedy, strict_counts)
    log.info("%s: %d ratings, %d movies from %s", name, len(ratings), len(movies), data_dir)
    return data


# ------------------------------------------------------------------------------------ fetch & extract


def _source_id(zip_path: Path) -> dict[str, object]:
    st = zip_path.stat()
    return {"zip": str(zip_path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _install_archive(
    archive: Path,
    name: str,
    cache_dir: Path,
    *,
    strict_counts: bool,
    source: dict[str, object],
    remedy: str,
    label: str,
) -> MovieLensData:
    """Extract and check ``archive`` in a temp folder, then atomically make it ``cache_dir/<name>``."""
    target = cache_dir / name
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{name}-extract-"))
    try:
        try:
            fetch.safe_extract(archive, staging, remedy, label)
        except fetch.FetchError as exc:
            raise DatasetError(str(exc)) from None
        data_dir, missing = _locate(staging, name)
        if missing:
            inside = [(data_dir / f).relative_to(staging).as_posix() for f in missing]
            what = " and ".join(inside)
            raise DatasetError(f"{label}: the archive has no {what} (is it {name}?). {remedy}")
        data = read_dataset_folder(name, data_dir, strict_counts=strict_counts, remedy=remedy)
        (data_dir / _SOURCE_MARKER).write_text(json.dumps(source))
        old = None
        if target.exists():  # a stale copy from another local zip: swap it out, then remove it
            old = cache_dir / f".{name}-old-{os.getpid()}"
            target.rename(old)
        data_dir.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info("cached %s in %s", name, target)
        return MovieLensData(name, data.info, target, data.ratings, data.movies)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_cache(name: str, target: Path, strict_counts: bool) -> MovieLensData:
    remedy = f"The cached copy is damaged: delete {target} and run again to download it afresh."
    return read_dataset_folder(name, target, strict_counts=strict_counts, remedy=remedy)


def _load_local(name: str, local: Path, cache_dir: Path, strict_counts: bool) -> MovieLensData:
    if local.is_dir():
        if _locate(local, name)[1] and (local / f"{name}.zip").is_file():
            local = local / f"{name}.zip"  # a folder of archives, like ../shared/data/movielens
        else:
            return read_dataset_folder(name, local, strict_counts=strict_counts)
    if not local.is_file():
        raise DatasetError(f"{local} does not exist; set MOVIELENS_PATH to a {name} folder or zip.")
    target = cache_dir / name
    source = _source_id(local)
    marker = target / _SOURCE_MARKER
    if marker.is_file() and json.loads(marker.read_text() or "{}") == source:
        return _read_cache(name, target, strict_counts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    remedy = f"Point MOVIELENS_PATH at a good copy of {name}, or unset it to download from GroupLens."
    return _install_archive(
        local, name, cache_dir, strict_counts=strict_counts, source=source, remedy=remedy, label=str(local)
    )


def load_movielens(
    name: str,
    *,
    cache_dir: Path,
    base_url: str = GROUPLENS,
    local_path: Path | None = None,
    progress: bool = True,
    strict_counts: bool = True,
) -> MovieLensData:
    """Load dataset ``name`` from ``local_path`` (folder or zip) or ``<base_url>/<name>.zip``, cached.

    ``strict_counts=False`` turns the README row-count check into a log line (for small synthetic
    copies in tests and benchmarks); every other check always runs.
    """
    info = _info(name)
    cache_dir = Path(cache_dir)
    if local_path is not None:
        return _load_local(name, Path(local_path).expanduser(), cache_dir, strict_counts)
    target = cache_dir / name
    if target.is_dir():  # only ever created by an atomic rename after every check passed
        log.info("using the cached %s in %s", name, target)
        return _read_cache(name, target, strict_counts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    url = f"{base}/{name}.zip"
    try:
        archive = fetch.download(url, cache_dir, name, progress)
    except fetch.FetchError as exc:
        raise DatasetError(str(exc)) from None
    try:
        expected = fetch.published_md5(f"{url}.md5")
        if expected is None and base == GROUPLENS.rstrip("/"):
            expected = info.zip_md5 or _OFFICIAL_MD5.get(name)
        if expected is not None:
            actual = fetch.file_md5(archive)
            if actual != expected:
                raise DatasetError(
                    f"{url}: MD5 {actual} does not match the published {expected}; the download is "
                    "corrupt or not the official archive, and nothing was cached. Run again to retry, "
                    "or use another MOVIELENS_MIRROR."
                )
        remedy = f"Nothing was cached; run again to retry, or use another source for {url}."
        return _install_archive(
            archive, name, cache_dir, strict_counts=strict_counts, source={"url": url}, remedy=remedy,
            label=url,
        )  # fmt: skip
    finally:
        archive.unlink(missing_ok=True)


def load_from_settings(settings: Settings, *, progress: bool = True) -> MovieLensData:
    """The configured dataset: ``MOVIELENS_PATH``, else ``MOVIELENS_MIRROR``, else GroupLens."""
    return load_movielens(
        settings.movielens_dataset,
        cache_dir=settings.cache_dir,
        base_url=settings.dataset_base_url,
        local_path=settings.movielens_path,
        progress=progress,
    )
