"""The bot's database: movie catalog, member ratings and model versions (aiosqlite).

Every SQL string of the project lives in this module, always parameterised.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``. A commit then reaches the
WAL file through ``write()`` before the call returns, so a rating whose call returned survives the
bot process being killed (even with SIGKILL): the data sits in the operating system's page cache
and the WAL is replayed on the next open. What NORMAL gives up is only the ``fsync`` per commit,
so a power cut or kernel crash can lose the last few commits; ``synchronous=FULL`` would close that
gap at several times the cost per rating. Pass ``synchronous="FULL"`` to :class:`Storage` for that.

Concurrency: one :class:`Storage` holds a single connection (aiosqlite runs it on one thread).
Multi-statement work takes an :class:`asyncio.Lock` so that transactions of different tasks never
interleave on the shared connection, and writes are shielded from cancellation so a cancelled
caller can never leave a transaction half-open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiosqlite
import numpy as np
import pandas as pd

from recommender.core.errors import StorageUnavailable, UnknownMovie
from recommender.core.types import Movie

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Storage",
    "StorageError",
    "StoredRating",
    "read_member_ratings",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Numbered migrations: MIGRATIONS[i] brings the schema from version i to i + 1 (PRAGMA user_version).
# Each runs in its own transaction together with the version bump, so a crash mid-migration leaves
# the previous version intact. Never edit a released migration; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: catalog, member ratings, model versions
    (
        """CREATE TABLE movies (
            id      INTEGER PRIMARY KEY,
            title   TEXT NOT NULL,
            year    INTEGER,
            genres  TEXT NOT NULL DEFAULT '',
            dataset TEXT NOT NULL
        )""",
        """CREATE TABLE ratings (
            user_id        INTEGER NOT NULL,
            movie_id       INTEGER NOT NULL REFERENCES movies(id),
            stars          REAL NOT NULL CHECK (stars >= 0.5 AND stars <= 5.0),
            guild_id       INTEGER,
            rated_at       REAL NOT NULL,
            previous_stars REAL,
            PRIMARY KEY (user_id, movie_id)
        ) WITHOUT ROWID""",
        # the retrain loop counts ratings newer than the last training
        "CREATE INDEX ratings_rated_at ON ratings(rated_at)",
        "CREATE INDEX ratings_movie ON ratings(movie_id)",
        """CREATE TABLE model_versions (
            version    TEXT PRIMARY KEY,
            family     TEXT NOT NULL,
            metrics    TEXT NOT NULL,
            trained_at REAL NOT NULL,
            published  INTEGER NOT NULL,
            recorded_at REAL NOT NULL
        )""",
    ),
    # 2: dataset popularity next to the catalog (cold start works before any model exists)
    (
        """CREATE TABLE movie_popularity (
            movie_id  INTEGER PRIMARY KEY REFERENCES movies(id) ON DELETE CASCADE,
            n_ratings INTEGER NOT NULL,
            mean      REAL NOT NULL,
            score     REAL NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_SQL_UPSERT_RATING = """
INSERT INTO ratings (user_id, movie_id, stars, guild_id, rated_at, previous_stars)
VALUES (?, ?, ?, ?, ?, NULL)
ON CONFLICT (user_id, movie_id) DO UPDATE SET
    previous_stars = ratings.stars,
    stars = excluded.stars,
    guild_id = excluded.guild_id,
    rated_at = excluded.rated_at
RETURNING previous_stars
"""
_SQL_UPSERT_MOVIE = """
INSERT INTO movies (id, title, year, genres, dataset) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    title = excluded.title, year = excluded.year, genres = excluded.genres, dataset = excluded.dataset
"""
_SQL_DELETE_UNUSED_MOVIE = (
    "DELETE FROM movies WHERE id = ? AND NOT EXISTS (SELECT 1 FROM ratings WHERE movie_id = ?)"
)
_SQL_MOVIE_COLUMNS = "SELECT id, title, year, genres FROM movies"
_SQL_RATING_COLUMNS = "SELECT user_id, movie_id, stars, guild_id, rated_at FROM ratings"
_SQL_SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_SQL_READ_MEMBER_RATINGS = (
    "SELECT user_id, movie_id, stars, CAST(rated_at AS INTEGER) FROM ratings "
    "ORDER BY rated_at, user_id, movie_id"
)

# Primary SQLite result codes meaning "this database cannot take writes right now".
_UNAVAILABLE_CODES = {
    5,  # SQLITE_BUSY: another process held the write lock past busy_timeout
    8,  # SQLITE_READONLY: read-only file, directory or connection
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL: database or disk is full
    14,  # SQLITE_CANTOPEN
}
_UNAVAILABLE_TEXT = ("readonly database", "disk is full", "database is locked", "disk i/o error")


class StorageError(RuntimeError):
    """The database cannot be used as configured (schema from a newer version, catalog mismatch)."""


@dataclass(frozen=True, slots=True)
class StoredRating:
    user_id: int
    movie_id: int
    stars: float
    guild_id: int | None
    rated_at: float


def _is_unavailable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
        return True
    text = str(exc).lower()
    return any(part in text for part in _UNAVAILABLE_TEXT)


def _db_uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _movie(row: tuple[Any, ...]) -> Movie:
    movie_id, title, year, genres = row
    return Movie(
        int(movie_id), title, None if year is None else int(year), tuple(g for g in genres.split("|") if g)
    )


def _rating(row: tuple[Any, ...]) -> StoredRating:
    user_id, movie_id, stars, guild_id, rated_at = row
    return StoredRating(int(user_id), int(movie_id), float(stars), guild_id, float(rated_at))


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays show up in metrics dicts from training
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class Storage:
    """Async access to the bot's SQLite database: ``async with Storage(path) as storage: ...``."""

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 5_000,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self.path = Path(path)
        self.read_only = read_only
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> Storage:
        """Connect, set the pragmas and apply pending migrations."""
        if self._db is not None:
            return self
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "ro" if self.read_only else "rwc"
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, single statements autocommit
            db = await aiosqlite.connect(_db_uri(self.path, mode), uri=True, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            await db.execute("PRAGMA foreign_keys = ON")
            if not self.read_only:
                async with db.execute("PRAGMA journal_mode = WAL") as cur:
                    row = await cur.fetchone()
                if row is None or str(row[0]).lower() != "wal":
                    log.warning("could not switch %s to WAL (journal_mode=%s)", self.path, row)
            await db.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._db = db
            await self._migrate()
        except BaseException:
            self._db = None
            await db.close()
            raise
        return self

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def __aenter__(self) -> Storage:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Storage is not open; use `async with Storage(path) as storage:`")
        return self._db

    async def schema_version(self) -> int:
        async with self._lock:
            return await self._user_version()

    async def _user_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        current = await self._user_version()
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} has schema version {current}, newer than this code knows ({SCHEMA_VERSION}); "
                "upgrade the bot or point BOT_DATA_DIR elsewhere"
            )
        for version in range(current, target):

            async def step(db: aiosqlite.Connection, version: int = version) -> None:
                for statement in MIGRATIONS[version]:
                    await db.execute(statement)
                # user_version lives in the file header and is part of the transaction
                await db.execute(f"PRAGMA user_version = {version + 1}")

            await self._transaction(step)
            log.info("migrated %s to schema version %d", self.path, version + 1)

    # -- write plumbing ----------------------------------------------------------------------
    async def _transaction(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one write transaction: all of it commits, or nothing does."""

        async def run() -> T:
            async with self._lock:
                db = self.db
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    result = await body(db)
                    await db.execute("COMMIT")
                    return result
                except BaseException as exc:
                    if db.in_transaction:
                        await db.rollback()
                    self._raise_translated(exc)
                    raise

        # shield: a cancelled caller must not abandon a transaction half-way on the shared connection
        return await asyncio.shield(run())

    async def _write(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """One autocommit statement (atomic on its own); returns any RETURNING rows."""

        async def run() -> list[sqlite3.Row]:
            async with self._lock:
                try:
                    return list(await self.db.execute_fetchall(sql, params))
                except BaseException as exc:
                    self._raise_translated(exc)
                    raise

        return await asyncio.shield(run())

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # the lock keeps a read from seeing another task's uncommitted transaction on this connection
        async with self._lock:
            return list(await self.db.execute_fetchall(sql, params))

    def _raise_translated(self, exc: BaseException) -> None:
        """Turn "read-only / disk full / locked" into the domain error; other errors pass through."""
        if isinstance(exc, sqlite3.Error) and _is_unavailable(exc):
            log.error("write to %s refused: %s", self.path, exc)
            raise StorageUnavailable(str(exc)) from exc

    # -- catalog -----------------------------------------------------------------------------
    async def load_catalog(
        self,
        dataset: str,
        movies: Iterable[Movie],
        popularity: Mapping[int, tuple[int, float, float]] | None = None,
    ) -> int:
        """Store the dataset's movies (and their popularity); idempotent. Returns the catalog size.

        Movies no longer in the dataset are removed unless a member rated them. Switching to another
        dataset while members have ratings raises :class:`StorageError`: the same movie id means a
        different film in another MovieLens release, so the ratings would silently change meaning.
        ``popularity=None`` keeps the stored popularity; a mapping replaces it.
        """
        rows = [(m.movie_id, m.title, m.year, "|".join(m.genres), dataset) for m in movies]
        new_ids = {r[0] for r in rows}

        async def body(db: aiosqlite.Connection) -> int:
            async with db.execute("SELECT value FROM meta WHERE key = 'catalog_dataset'") as cur:
                row = await cur.fetchone()
            current = row[0] if row else None
            if current is not None and current != dataset:
                async with db.execute("SELECT COUNT(*) FROM ratings") as cur:
                    n_rated = (await cur.fetchone())[0]
                if n_rated:
                    raise StorageError(
                        f"the catalog in {self.path} is {current!r} and {n_rated} member ratings refer "
                        f"to its movie ids; refusing to replace it with {dataset!r}. Keep "
                        f"MOVIELENS_DATASET={current} or start from a new BOT_DATA_DIR."
                    )
                await db.execute("DELETE FROM movies")
            await db.executemany(_SQL_UPSERT_MOVIE, rows)
            stale = [r[0] for r in await db.execute_fetchall("SELECT id FROM movies") if r[0] not in new_ids]
            if stale:
                await db.executemany(_SQL_DELETE_UNUSED_MOVIE, [(i, i) for i in stale])
            if popularity is not None:
                await db.execute("DELETE FROM movie_popularity")
                pop_rows = [
                    (int(mid), int(n), float(mean), float(score))
                    for mid, (n, mean, score) in popularity.items()
                    if int(mid) in new_ids
                ]
                if len(pop_rows) < len(popularity):
                    log.warning(
                        "%d popularity rows name movies outside the catalog", len(popularity) - len(pop_rows)
                    )
                await db.executemany("INSERT INTO movie_popularity VALUES (?, ?, ?, ?)", pop_rows)
            await db.execute(_SQL_SET_META, ("catalog_dataset", dataset))
            await db.execute(_SQL_SET_META, ("catalog_loaded_at", repr(time.time())))
            async with db.execute("SELECT COUNT(*) FROM movies") as cur:
                return int((await cur.fetchone())[0])

        count = await self._transaction(body)
        log.info("catalog %s: %d movies stored", dataset, count)
        return count

    async def popularity(self) -> dict[int, tuple[int, float, float]]:
        rows = await self._read("SELECT movie_id, n_ratings, mean, score FROM movie_popularity")
        return {int(m): (int(n), float(mean), float(score)) for m, n, mean, score in rows}

    async def catalog_dataset(self) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = 'catalog_dataset'")
        return rows[0][0] if rows else None

    async def get_movie(self, movie_id: int) -> Movie | None:
        rows = await self._read(_SQL_MOVIE_COLUMNS + " WHERE id = ?", (int(movie_id),))
        return _movie(rows[0]) if rows else None

    async def all_movies(self) -> list[Movie]:
        return [_movie(r) for r in await self._read(_SQL_MOVIE_COLUMNS + " ORDER BY id")]

    # -- ratings -----------------------------------------------------------------------------
    async def upsert_rating(
        self,
        user_id: int,
        movie_id: int,
        stars: float,
        guild_id: int | None,
        rated_at: float | None = None,
    ) -> tuple[StoredRating, float | None]:
        """Store ``user -> movie = stars`` (the latest call wins). Returns (stored, previous stars or None).

        Durable once it returns (see the module docstring). Raises :class:`UnknownMovie` for a movie
        outside the catalog and :class:`StorageUnavailable` when the database refuses writes.
        """
        stars = float(stars)
        if not math.isfinite(stars):
            raise ValueError(f"stars must be a finite number, got {stars!r}")
        rated_at = time.time() if rated_at is None else float(rated_at)
        params = (int(user_id), int(movie_id), stars, None if guild_id is None else int(guild_id), rated_at)
        try:
            # one statement: the upsert and the read of the previous stars are atomic together
            rows = await self._write(_SQL_UPSERT_RATING, params)
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise UnknownMovie(str(movie_id)) from exc
            raise ValueError(f"stars {stars!r} are outside 0.5..5") from exc
        previous = rows[0][0] if rows else None
        stored = StoredRating(params[0], params[1], stars, params[3], rated_at)
        return stored, None if previous is None else float(previous)

    async def user_ratings(self, user_id: int) -> list[StoredRating]:
        """A member's ratings, newest first."""
        rows = await self._read(
            _SQL_RATING_COLUMNS + " WHERE user_id = ? ORDER BY rated_at DESC, movie_id", (int(user_id),)
        )
        return [_rating(r) for r in rows]

    async def ratings_fingerprint(self, user_id: int) -> tuple[int, float | None]:
        """``(count, newest rated_at)`` of a member's ratings: a cheap check that a cached list of
        them is still current (every upsert stamps ``rated_at``; every delete changes the count)."""
        rows = await self._read(
            "SELECT count(*), max(rated_at) FROM ratings WHERE user_id = ?", (int(user_id),)
        )
        count, newest = rows[0]
        return int(count), None if newest is None else float(newest)

    async def delete_user(self, user_id: int) -> int:
        """Forget every rating of one member; returns how many were deleted."""
        rows = await self._write("DELETE FROM ratings WHERE user_id = ? RETURNING movie_id", (int(user_id),))
        return len(rows)

    async def count_ratings(self, since: float | None = None) -> int:
        """Ratings stored (or changed) after ``since`` (a unix time); all of them when None."""
        if since is None:
            rows = await self._read("SELECT COUNT(*) FROM ratings")
        else:
            rows = await self._read("SELECT COUNT(*) FROM ratings WHERE rated_at > ?", (float(since),))
        return int(rows[0][0])

    async def stats(self) -> dict[str, int]:
        rows = await self._read(
            "SELECT (SELECT COUNT(*) FROM ratings), (SELECT COUNT(DISTINCT user_id) FROM ratings), "
            "(SELECT COUNT(*) FROM movies)"
        )
        ratings, members, movies = rows[0]
        return {"ratings": int(ratings), "members": int(members), "movies": int(movies)}

    # -- model versions ----------------------------------------------------------------------
    async def record_model_version(
        self, version: str, family: str, metrics: Mapping[str, Any], trained_at: float, published: bool
    ) -> None:
        """Remember a training run (published or not) for /stats and audits."""
        payload = json.dumps(dict(metrics), sort_keys=True, default=_jsonable)
        await self._write(
            "INSERT INTO model_versions (version, family, metrics, trained_at, published, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET family = excluded.family, "
            "metrics = excluded.metrics, trained_at = excluded.trained_at, published = excluded.published, "
            "recorded_at = excluded.recorded_at",
            (str(version), str(family), payload, float(trained_at), int(bool(published)), time.time()),
        )

    async def model_versions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent training runs, newest first (addition to the contract)."""
        rows = await self._read(
            "SELECT version, family, metrics, trained_at, published FROM model_versions "
            "ORDER BY trained_at DESC, version DESC LIMIT ?",
            (int(limit),),
        )
        return [
            {
                "version": v,
                "family": f,
                "metrics": json.loads(m),
                "trained_at": float(t),
                "published": bool(p),
            }
            for v, f, m, t, p in rows
        ]

    # -- test hooks ----------------------------------------------------------------------------
    async def _limit_pages_for_tests(self, extra_pages: int) -> None:
        """Cap the file at its current size plus ``extra_pages``: later growth fails with SQLITE_FULL."""
        async with self._lock:
            async with self.db.execute("PRAGMA page_count") as cur:
                pages = (await cur.fetchone())[0]
            await self.db.execute(f"PRAGMA max_page_count = {int(pages) + int(extra_pages)}")


_MEMBER_COLUMNS = {"user_id": "int64", "movie_id": "int32", "rating": "float32", "timestamp": "int64"}


def _empty_member_frame() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in _MEMBER_COLUMNS.items()})


def read_member_ratings(db_path: Path | str) -> pd.DataFrame:
    """Every member rating, for the training process (sync, opens the database read-only).

    Columns: user_id int64 (Discord id), movie_id int32, rating float32, timestamp int64 (unix seconds),
    oldest first. An empty frame with those columns when the database or its tables don't exist yet.
    """
    path = Path(db_path)
    if not path.is_file():
        log.info("no ratings database at %s yet; training without member ratings", path)
        return _empty_member_frame()
    # mode=ro: the trainer must never be able to change the bot's data, whatever happens
    conn = sqlite3.connect(_db_uri(path, "ro"), uri=True, timeout=30.0)
    try:
        try:
            rows = conn.execute(_SQL_READ_MEMBER_RATINGS).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return _empty_member_frame()
            raise
    finally:
        conn.close()
    if not rows:
        return _empty_member_frame()
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame(
        {
            name: np.asarray(col, dtype=dtype)
            for (name, dtype), col in zip(_MEMBER_COLUMNS.items(), columns, strict=True)
        }
    )
