"""MovieLens: fetch (GroupLens, a mirror, a local zip or folder), verify, cache and parse.

Every dataset ends in one normal form (:class:`MovieLensData`): ``ratings`` with compact dtypes in
file order (the ml-100k canonical folds are consecutive blocks of ``u.data``) and ``movies`` with a
clean title, a nullable year, a tuple of genre names and nullable ``imdb_id``/``tmdb_id`` from
``links.csv`` where the dataset has one (the CSV layouts; ml-100k's u.item "IMDb URL" is a title
search, not an id, and ml-1m has none, so theirs stay ``<NA>``). The readers live in
:mod:`recommender.data.readers`.

A download lands in a temporary file inside ``cache_dir``, is checked against the MD5 GroupLens
publishes next to the archive when there is one, extracted member by member into a temporary
folder (nothing may escape it), parsed and checked, and only then renamed to ``cache_dir/<name>``.
So a folder under that name is always a verified copy, and a second run never needs the network.
"""

from __future__ import annotations

import json
import logging
import os
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
from recommender.data.readers import (
    DatasetError,
    movies_from_frame,
    read_links,
    read_movies_100k,
    read_movies_csv,
    read_movies_dat,
    read_ratings,
)
from recommender.data.titles import parse_title

if TYPE_CHECKING:
    from recommender.core.config import Settings

__all__ = [
    "GROUPLENS",
    "DatasetError",
    "MovieLensData",
    "load_from_settings",
    "load_movielens",
    "movies_from_frame",
    "parse_title",
    "read_dataset_folder",
]

log = logging.getLogger(__name__)

GROUPLENS = GROUPLENS_BASE_URL
_SOURCE_MARKER = ".moviebot-source.json"

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
    links: str | None = None  # read when present; the official CSV archives always hold it


def _layout(name: str) -> _Layout:
    if name == "ml-100k":
        return _Layout("u.data", "u.item", "100k")
    if name == "ml-1m":
        return _Layout("ratings.dat", "movies.dat", "dat")
    return _Layout("ratings.csv", "movies.csv", "csv", "links.csv")


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"{name!r} is not a MovieLens dataset I know; use one of {known}") from None


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
        movies = read_movies_100k(data_dir, remedy)
        sep, header = "\t", False
    elif layout.kind == "dat":
        movies = read_movies_dat(data_dir, remedy)
        sep, header = "::", False
    else:
        movies = read_movies_csv(data_dir, remedy)
        sep, header = ",", True
    if not movies["movie_id"].is_unique:
        dup = int(movies["movie_id"][movies["movie_id"].duplicated()].iloc[0])
        raise DatasetError(f"{data_dir / layout.movies}: movie id {dup} appears twice. {remedy}")
    if layout.links is not None and (data_dir / layout.links).is_file():
        movies = read_links(data_dir / layout.links, movies, remedy)
    ratings = read_ratings(
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
