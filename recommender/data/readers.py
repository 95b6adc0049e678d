"""The per-layout MovieLens readers: ratings in chunks, movies of each layout, and links.csv.

Split out of :mod:`recommender.data.movielens`, which locates, fetches and checks a dataset and
calls these; every reader raises :class:`DatasetError` naming the file, the line and the remedy.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.core.types import Movie, RatingScale
from recommender.data.titles import parse_title

__all__ = [
    "CHUNK_ROWS",
    "ML100K_GENRES",
    "DatasetError",
    "check_header",
    "movies_from_frame",
    "read_links",
    "read_movies_100k",
    "read_movies_csv",
    "read_movies_dat",
    "read_ratings",
]

log = logging.getLogger(__name__)

#: Rows per chunk when reading ratings: big enough to be fast, small enough to keep 25M rows < 1 GiB.
CHUNK_ROWS = 2_000_000

# ml-100k's u.item carries 19 genre flags; u.genre names them, this is the fallback if it is missing.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
_NO_GENRE = {"(no genres listed)", "unknown", ""}
LINKS_HEADER = ["movieId", "imdbId", "tmdbId"]


class DatasetError(Exception):
    """A dataset could not be fetched or failed a check; the message says what, where and what to do."""


def check_header(path: Path, sep: str, expected: list[str] | None, n_fields: int, remedy: str) -> None:
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


def read_ratings(
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
    check_header(path, sep, expected, 4, remedy)
    source: Path | object = path
    if sep == "::":  # the C parser needs a one-character separator; ratings.dat is only digits
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
    """The normal form; ``imdb_id``/``tmdb_id`` start unknown (:func:`read_links` fills them)."""
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
    frame["imdb_id"] = pd.array([pd.NA] * len(rows), dtype="Int64")
    frame["tmdb_id"] = pd.array([pd.NA] * len(rows), dtype="Int64")
    return frame


def _split_genres(text: str) -> tuple[str, ...]:
    return tuple(g for g in text.strip().split("|") if g not in _NO_GENRE)


def _bad_line(path: Path, line: int, what: str, remedy: str) -> DatasetError:
    return DatasetError(f"{path}: line {line}: {what}; this is not a MovieLens {path.name} file. {remedy}")


def read_movies_100k(folder: Path, remedy: str) -> pd.DataFrame:
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


def read_movies_dat(folder: Path, remedy: str) -> pd.DataFrame:
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


def read_movies_csv(folder: Path, remedy: str) -> pd.DataFrame:
    path = folder / "movies.csv"
    check_header(path, ",", ["movieId", "title", "genres"], 3, remedy)
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


def read_links(path: Path, movies: pd.DataFrame, remedy: str) -> pd.DataFrame:
    """``movies`` with ``imdb_id``/``tmdb_id`` from ``links.csv`` (``movieId,imdbId,tmdbId``).

    Blank ids stay ``<NA>`` (ml-latest-small has movies without a TMDB id); a movie missing from
    the file keeps ``<NA>`` too. A link for a movie that is not in ``movies.csv`` means the files
    come from different releases, and is refused like any other inconsistency.
    """
    check_header(path, ",", LINKS_HEADER, 3, remedy)
    try:
        links = pd.read_csv(
            path, header=0, names=["movie_id", "imdb_id", "tmdb_id"],
            dtype={"movie_id": "int64", "imdb_id": "Int64", "tmdb_id": "Int64"}, engine="c",
        )  # fmt: skip
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DatasetError(f"{path}: could not parse the links ({detail}). {remedy}") from None
    if not links["movie_id"].is_unique:
        dup = int(links["movie_id"][links["movie_id"].duplicated()].iloc[0])
        raise DatasetError(f"{path}: movie id {dup} appears twice. {remedy}")
    unknown = ~links["movie_id"].isin(movies["movie_id"])
    if unknown.any():
        first = int(links["movie_id"][unknown].iloc[0])
        raise DatasetError(
            f"{path}: movie {first} is not in movies.csv ({int(unknown.sum()):,} links are for unknown "
            f"movies); the files are from different releases. {remedy}"
        )
    out = movies.copy()
    by_id = links.set_index("movie_id")
    for column in ("imdb_id", "tmdb_id"):
        out[column] = by_id[column].reindex(out["movie_id"].astype("int64")).to_numpy()
        out[column] = out[column].astype("Int64")
    log.debug("%s: %d links", path, len(links))
    return out


def _optional_int(value: object) -> int | None:
    return None if pd.isna(value) else int(value)  # type: ignore[call-overload]


def movies_from_frame(movies: pd.DataFrame) -> list[Movie]:
    """One :class:`Movie` per row of a normal-form movies frame, ids from links.csv included."""
    has_links = "imdb_id" in movies.columns
    out = []
    for row in movies.itertuples(index=False):
        imdb = _optional_int(row.imdb_id) if has_links else None
        tmdb = _optional_int(row.tmdb_id) if has_links else None
        year = _optional_int(row.year)
        out.append(Movie(int(row.movie_id), str(row.title), year, tuple(row.genres), imdb, tmdb))
    return out
