"""The trainer's synchronous read of every member rating, from SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd

import recommender.persistence.storage._sql as _sql
from recommender.core.errors import StorageUnavailable
from recommender.persistence.storage._backend import Row, is_postgres_url, redact_url

log = logging.getLogger(__name__)

_MEMBER_COLUMNS = {"user_id": "int64", "movie_id": "int32", "rating": "float32", "timestamp": "int64"}


def _empty_member_frame() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in _MEMBER_COLUMNS.items()})


def _sqlite_rows(path: Path, sql: str = _sql.READ_MEMBER_RATINGS) -> list[Row] | None:
    if not path.is_file():
        log.info("no ratings database at %s yet; training without member ratings", path)
        return None
    from recommender.persistence.storage._sqlite import db_uri

    # mode=ro: the trainer must never be able to change the bot's data, whatever happens
    conn = sqlite3.connect(db_uri(path, "ro"), uri=True, timeout=30.0)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    finally:
        conn.close()


def _postgres_rows(url: str, sql: str = _sql.READ_MEMBER_RATINGS) -> list[Row] | None:
    """One short asyncpg session on a thread of its own: the caller may be inside an event loop
    already, and asyncpg is the driver the bot uses anyway (no second PostgreSQL driver to install)."""
    import asyncpg

    async def fetch() -> list[Row] | None:
        settings = {"default_transaction_read_only": "on", "application_name": "moviebot-trainer"}
        conn = await asyncpg.connect(url, timeout=30, server_settings=settings)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        except asyncpg.UndefinedTableError:
            return None
        finally:
            await conn.close()

    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["rows"] = asyncio.run(fetch())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="read-member-ratings")
    thread.start()
    thread.join()
    error = box.get("error")
    if isinstance(error, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError):
        raise StorageUnavailable(f"cannot read member ratings from {redact_url(url)}: {error}") from error
    if isinstance(error, BaseException):
        raise error
    return box["rows"]  # type: ignore[return-value]


def read_member_ratings(location: Path | str) -> pd.DataFrame:
    """Every member rating, for the training process (sync, read-only).

    ``location``: the SQLite path or the ``postgresql://`` URL the bot uses. Columns: user_id int64
    (Discord id), movie_id int32, rating float32, timestamp int64 (unix seconds, truncated), oldest
    first. An empty frame with those columns when the database or its tables don't exist yet.
    """
    rows = _postgres_rows(str(location)) if is_postgres_url(location) else _sqlite_rows(Path(location))
    if not rows:
        return _empty_member_frame()
    users, movies, stars, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype="int64"),
            "movie_id": np.asarray(movies, dtype="int32"),
            "rating": np.asarray(stars, dtype="float32"),
            "timestamp": np.trunc(np.asarray(times, dtype="float64")).astype("int64"),
        }
    )


_ADDED_MOVIES = (
    "SELECT m.id, m.title, m.year, m.genres, m.imdb_id, m.tmdb_id FROM movies m "
    "JOIN added_movies a ON a.movie_id = m.id ORDER BY m.id"
)


def read_added_movies(location: Path | str) -> pd.DataFrame:
    """The movies admins added, for the training process (sync, read-only), in the dataset's normal
    form: movie_id, title, year, genres (a tuple), imdb_id, tmdb_id. Empty when there are none."""
    reader = _postgres_rows if is_postgres_url(location) else _sqlite_rows
    target = str(location) if is_postgres_url(location) else Path(location)
    rows = reader(target, _ADDED_MOVIES) or []  # type: ignore[arg-type]
    movies = [_sql.movie_from_row(r) for r in rows]
    genres = np.empty(len(movies), dtype=object)
    genres[:] = [m.genres for m in movies]
    return pd.DataFrame(
        {
            "movie_id": np.asarray([m.movie_id for m in movies], dtype=np.int32),
            "title": pd.Series([m.title for m in movies], dtype=object),
            "year": pd.array([m.year for m in movies], dtype="Int64"),
            "genres": genres,
            "imdb_id": pd.array([m.imdb_id for m in movies], dtype="Int64"),
            "tmdb_id": pd.array([m.tmdb_id for m in movies], dtype="Int64"),
        }
    )
