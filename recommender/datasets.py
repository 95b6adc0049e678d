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

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recommender.config import GROUPLENS_BASE_URL
from recommender.titles import parse_title
from recommender.types import DATASETS, DatasetInfo, RatingScale

if TYPE_CHECKING:
    from recommender.config import Settings

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


def _read_ratings(
    path: Path, name: str, scale: RatingScale, *, sep: str, header: bool, remedy: str
) -> pd.DataFrame:
    """Read a ratings table in chunks into preallocated compact arrays, checking every rating."""
    expected = ["userId", "movieId", "rating", "timestamp"] if header else None
    _check_header(path, sep, expected, 4, remedy)
    source: Path | object = path
    if sep == "::":  # the C parser needs a one-character separator; ratings.dat is only digits
        import io

        source = io.BytesIO(path.read_bytes().replace(b"::", b"\t"))
        sep = "\t"
    capacity = _count_lines(path)
    users = np.empty(capacity, np.int32)
    movies = np.empty(capacity, np.int32)
    stars = np.empty(capacity, np.float32)
    stamps = np.empty(capacity, np.int64)
    dtypes = {"user_id": "int32", "movie_id": "int32", "rating": "float32", "timestamp": "int64"}
    n = 0
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
            users[n : n + k] = chunk["user_id"].to_numpy()
            movies[n : n + k] = chunk["movie_id"].to_numpy()
            stars[n : n + k] = r
            stamps[n : n + k] = chunk["timestamp"].to_numpy()
            n += k
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DatasetError(f"{path}: could not parse the ratings ({detail}). {remedy}") from None
    # copy=False keeps the views: slicing must not duplicate 25M rows at the end.
    return pd.DataFrame(
        {"user_id": users[:n], "movie_id": movies[:n], "rating": stars[:n], "timestamp": stamps[:n]},
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


def _check_counts(name: str, folder: Path, data: MovieLensData, remedy: str) -> None:
    info = data.info
    found = {
        "ratings": (len(data.ratings), info.n_ratings, 0.0),
        "users": (int(data.ratings["user_id"].nunique()), info.n_users, 0.0),
        "movies": (len(data.movies), info.n_movies, _MOVIE_COUNT_TOLERANCE.get(name, 0.0)),
    }
    for what, (n, expected, tolerance) in found.items():
        if expected is not None and abs(n - expected) > tolerance * expected:
            raise DatasetError(
                f"{folder}: found {n:,} {what} but the {name} README states {expected:,}; "
                f"the copy is incomplete or from another release. {remedy}"
            )


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


def _check_rated_movies_exist(
    folder: Path, layout: _Layout, ratings: pd.DataFrame, movies: pd.DataFrame, header: bool, remedy: str
) -> None:
    """Every rated movie must be in the movies file: the catalog and the content model rely on it."""
    rated = ratings["movie_id"].to_numpy()
    ids = movies["movie_id"].to_numpy()
    if not len(rated):
        return
    # A lookup table beats np.isin on 25M rows (ids are small: < 300k in every release).
    top = int(max(rated.max(), ids.max() if len(ids) else 0))
    known = np.zeros(top + 1, dtype=bool)
    known[ids[ids >= 0]] = True
    unknown = (rated < 0) | ~known[np.maximum(rated, 0)]
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise DatasetError(
            f"{folder / layout.ratings}: line {i + 1 + int(header)}: movie {int(rated[i])} is not in "
            f"{layout.movies} ({int(unknown.sum()):,} ratings are for unknown movies). {remedy}"
        )


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
        data_dir / layout.ratings, name, info.scale, sep=sep, header=header, remedy=remedy
    )
    _check_rated_movies_exist(data_dir, layout, ratings, movies, header, remedy)
    data = MovieLensData(name=name, info=info, path=data_dir, ratings=ratings, movies=movies)
    if strict_counts:
        _check_counts(name, data_dir, data, remedy)
    log.info("%s: %d ratings, %d movies from %s", name, len(ratings), len(movies), data_dir)
    return data


# ------------------------------------------------------------------------------------ fetch & extract


def _progress_bar(total: int | None, desc: str, progress: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    enabled = progress and sys.stderr.isatty()
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, disable=not enabled)


def _download(url: str, cache_dir: Path, name: str, progress: bool) -> Path:
    """Stream ``url`` into a temporary file in ``cache_dir``; raise if it fails or comes up short."""
    advice = "Check MOVIELENS_MIRROR and the network, or set MOVIELENS_PATH to a local copy."
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"could not download {url}: HTTP {exc.code} {exc.reason}. {advice}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"could not download {url}: {reason}. {advice}") from None
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}-", suffix=".zip.part")
    tmp, received = Path(tmp_name), 0
    try:
        with response, os.fdopen(fd, "wb") as out, _progress_bar(total, f"{name}.zip", progress) as bar:
            while block := response.read(1 << 20):
                out.write(block)
                received += len(block)
                bar.update(len(block))
    except Exception as exc:  # IncompleteRead, reset connections, timeouts: all mean "truncated"
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"the download of {url} broke off after {received:,} bytes ({type(exc).__name__}: {exc}); "
            "nothing was cached: run again to retry."
        ) from None
    if total is not None and received != total:
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"the download of {url} was truncated: got {received:,} of {total:,} bytes; "
            "nothing was cached: run again to retry."
        )
    log.info("downloaded %s (%d bytes)", url, received)
    return tmp


def _published_md5(base_url: str, name: str) -> str | None:
    """The MD5 published as ``<base>/<name>.zip.md5``, or None when the source has none."""
    url = f"{base_url}/{name}.zip.md5"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError) as exc:
        # Mirrors (and the local copies) need not publish one; the structural checks still run.
        log.warning("no checksum at %s (%s); relying on the structural checks", url, exc)
        return None
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not match:
        log.warning("%s holds no MD5 checksum; relying on the structural checks", url)
        return None
    return match.group().lower()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _safe_extract(archive: Path, target: Path, remedy: str, label: str) -> None:
    """Extract ``archive`` (named ``label`` in errors) into ``target``; refuse ``/``, ``..``, symlinks."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                name = member.filename.replace("\\", "/")
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise DatasetError(
                        f"{label}: member {member.filename!r} is a symbolic link, which a MovieLens archive "
                        f"never holds; the archive was not extracted. {remedy}"
                    )
                if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in PurePosixPath(name).parts:
                    raise DatasetError(
                        f"{label}: member {member.filename!r} would be written outside the extraction "
                        f"folder; the archive is unsafe and was not extracted. {remedy}"
                    )
            root = target.resolve()
            for member in members:
                dest = (target / member.filename.replace("\\", "/")).resolve()
                if not dest.is_relative_to(root):  # belt and braces after the name checks above
                    raise DatasetError(f"{label}: member {member.filename!r} escapes {target}. {remedy}")
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                # Reading to the end makes zipfile check the member's CRC.
                with zf.open(member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DatasetError(
            f"{label}: not a valid zip archive ({exc}); it is corrupt or truncated. {remedy}"
        ) from None


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
        _safe_extract(archive, staging, remedy, label)
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
    archive = _download(url, cache_dir, name, progress)
    try:
        expected = _published_md5(base, name)
        if expected is None and base == GROUPLENS.rstrip("/"):
            expected = info.zip_md5
        if expected is not None:
            actual = _md5(archive)
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
