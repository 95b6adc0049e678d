"""The :class:`Storage` facade: catalog, ratings and model versions over either backend."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import recommender.persistence.storage._sql as _sql
import recommender.persistence.storage.migrations as migrations
from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.persistence.errors import ConstraintViolation, StorageError
from recommender.persistence.storage._backend import Backend, Row, Tx, is_postgres_url
from recommender.persistence.storage._catalogue import CatalogueMixin
from recommender.persistence.storage._lists import MemberListsMixin
from recommender.persistence.storage._nights import MovieNightsMixin
from recommender.persistence.storage._runs import OperationsMixin

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredRating:
    user_id: int
    movie_id: int
    stars: float
    guild_id: int | None
    rated_at: float


def _rating(row: Row) -> StoredRating:
    user_id, movie_id, stars, guild_id, rated_at = row
    return StoredRating(
        int(user_id), int(movie_id), float(stars), _sql.optional_int(guild_id), float(rated_at)
    )


class Storage(MemberListsMixin, OperationsMixin, CatalogueMixin, MovieNightsMixin):
    """Async access to the bot's database: ``async with Storage(location) as storage: ...``.

    ``location`` is a path (SQLite, the embedded default) or a ``postgresql://`` URL (several
    processes sharing one server). ``read_only`` refuses every write with ``StorageUnavailable``.
    SQLite only: ``synchronous`` (see the package docstring), ``busy_timeout_ms``, and
    ``backup_dir`` (where start-up looks for a backup to name when the file is damaged; default
    ``<database folder>/backups``). PostgreSQL only: ``pool_size`` connections per process.
    """

    def __init__(
        self,
        location: Path | str,
        *,
        read_only: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 5_000,
        backup_dir: Path | str | None = None,
        pool_size: int = 5,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self.read_only = read_only
        self._backend: Backend
        if is_postgres_url(location):
            from recommender.persistence.storage._postgres import PostgresBackend

            self.location: Path | str = str(location)
            self.path: Path | None = None
            self._backend = PostgresBackend(str(location), read_only=read_only, pool_size=int(pool_size))
        else:
            from recommender.persistence.storage._sqlite import SqliteBackend

            self.path = Path(location)
            self.location = self.path
            self._backend = SqliteBackend(
                self.path,
                read_only=read_only,
                synchronous=synchronous,
                busy_timeout_ms=int(busy_timeout_ms),
                backup_dir=Path(backup_dir) if backup_dir else self.path.parent / "backups",
            )
        self._opened = False

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.dialect

    @property
    def label(self) -> str:
        """Where the data lives, safe to log (a URL's password is masked)."""
        return self._backend.label

    async def open(self) -> Storage:
        """Connect and apply pending migrations. Raises ``StorageCorrupt`` for a damaged SQLite file."""
        if self._opened:
            return self
        await self._backend.connect()
        try:
            await self._migrate()
        except BaseException:
            await self._backend.close()
            raise
        self._opened = True
        return self

    async def close(self) -> None:
        self._opened = False
        await self._backend.close()

    async def __aenter__(self) -> Storage:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The SQLite connection (for pragmas in tests and tools); not on PostgreSQL."""
        db = getattr(self._backend, "db", None)
        if db is None and self.dialect != "sqlite":
            raise RuntimeError("Storage.db is the SQLite connection; this storage runs on PostgreSQL")
        return self._backend.db  # type: ignore[attr-defined]

    async def schema_version(self) -> int:
        return await self._backend.schema_version()

    async def _migrate(self, target: int | None = None) -> None:
        steps = migrations.MIGRATIONS  # looked up per call, so a test can append a broken step
        await self._backend.migrate(steps, len(steps) if target is None else target)

    # -- catalog -----------------------------------------------------------------------------
    async def load_catalog(
        self,
        dataset: str,
        movies: Iterable[Movie],
        popularity: Mapping[int, tuple[int, float, float]] | None = None,
    ) -> int:
        """Store the dataset's movies (and their popularity); idempotent. Returns the catalog size.

        Movies no longer in the dataset are removed unless a member rated them or an admin added
        them. Switching to another dataset while members have ratings raises :class:`StorageError`:
        the same movie id can mean a different film in another MovieLens release, so the ratings
        would silently change meaning; :meth:`switch_catalog` moves them instead.
        ``popularity=None`` keeps the stored popularity; a mapping replaces it. IMDb/TMDB ids are
        stored when a movie carries them and kept when a later load does not.
        """
        rows = [
            (m.movie_id, m.title, m.year, "|".join(m.genres), dataset, m.imdb_id, m.tmdb_id) for m in movies
        ]
        new_ids = {r[0] for r in rows}

        async def body(tx: Tx) -> int:
            found = await tx.fetch("SELECT value FROM meta WHERE key = 'catalog_dataset'")
            current = found[0][0] if found else None
            if current is not None and current != dataset:
                n_rated = (await tx.fetch("SELECT COUNT(*) FROM ratings"))[0][0]
                if n_rated:
                    raise StorageError(
                        f"the catalog in {self.label} is {current!r} and {n_rated} member ratings refer "
                        f"to its movie ids; refusing to replace it with {dataset!r}. To switch and "
                        f"keep every rating: `python -m bot --switch-dataset {dataset} --dry-run`, "
                        f"then the same with --yes. Or keep MOVIELENS_DATASET={current}."
                    )
                # admins' movies are no dataset's: they stay (ids above any MovieLens id)
                await tx.execute("DELETE FROM movies WHERE id NOT IN (SELECT movie_id FROM added_movies)")
            await tx.executemany(_sql.UPSERT_MOVIE, rows)
            stale = [r[0] for r in await tx.fetch("SELECT id FROM movies") if r[0] not in new_ids]
            if stale:
                await tx.executemany(_sql.DELETE_UNUSED_MOVIE, [(i, i) for i in stale])
            if popularity is not None:
                await tx.execute("DELETE FROM movie_popularity")
                pop_rows = [
                    (int(mid), int(n), float(mean), float(score))
                    for mid, (n, mean, score) in popularity.items()
                    if int(mid) in new_ids
                ]
                if len(pop_rows) < len(popularity):
                    log.warning(
                        "%d popularity rows name movies outside the catalog", len(popularity) - len(pop_rows)
                    )
                await tx.executemany("INSERT INTO movie_popularity VALUES (?, ?, ?, ?)", pop_rows)
            await tx.execute(_sql.SET_META, ("catalog_dataset", dataset))
            await tx.execute(_sql.SET_META, ("catalog_loaded_at", repr(time.time())))
            return int((await tx.fetch("SELECT COUNT(*) FROM movies"))[0][0])

        count = await self._backend.run(body)
        log.info("catalog %s: %d movies stored", dataset, count)
        return count

    async def popularity(self) -> dict[int, tuple[int, float, float]]:
        rows = await self._backend.read("SELECT movie_id, n_ratings, mean, score FROM movie_popularity")
        return {int(m): (int(n), float(mean), float(score)) for m, n, mean, score in rows}

    async def catalog_dataset(self) -> str | None:
        rows = await self._backend.read("SELECT value FROM meta WHERE key = 'catalog_dataset'")
        return rows[0][0] if rows else None

    async def get_movie(self, movie_id: int) -> Movie | None:
        rows = await self._backend.read(_sql.MOVIE_COLUMNS + " WHERE id = ?", (int(movie_id),))
        return _sql.movie_from_row(rows[0]) if rows else None

    async def all_movies(self) -> list[Movie]:
        return [_sql.movie_from_row(r) for r in await self._backend.read(_sql.MOVIE_COLUMNS + " ORDER BY id")]

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

        Durable once it returns (see the package docstring). Raises :class:`UnknownMovie` for a movie
        outside the catalog and :class:`StorageUnavailable` when the database refuses writes.
        """
        stars = _sql.check_stars(stars)
        rated_at = time.time() if rated_at is None else float(rated_at)
        params = (int(user_id), int(movie_id), stars, _sql.optional_int(guild_id), rated_at)
        try:
            # one statement: the upsert and the read of the previous stars are atomic together
            rows = await self._backend.write(_sql.UPSERT_RATING, params)
        except ConstraintViolation as exc:
            if exc.kind == "foreign_key":
                raise UnknownMovie(str(movie_id)) from exc
            raise ValueError(f"stars {stars!r} are outside 0.5..5") from exc
        previous = rows[0][0] if rows else None
        stored = StoredRating(params[0], params[1], stars, params[3], rated_at)
        return stored, None if previous is None else float(previous)

    async def user_ratings(self, user_id: int) -> list[StoredRating]:
        """A member's ratings, newest first."""
        rows = await self._backend.read(
            _sql.RATING_COLUMNS + " WHERE user_id = ? ORDER BY rated_at DESC, movie_id", (int(user_id),)
        )
        return [_rating(r) for r in rows]

    async def ratings_fingerprint(self, user_id: int) -> tuple[int, float | None]:
        """``(count, newest rated_at)`` of a member's ratings: a cheap check that a cached list of
        them is still current (every upsert stamps ``rated_at``; every delete changes the count)."""
        rows = await self._backend.read(
            "SELECT count(*), max(rated_at) FROM ratings WHERE user_id = ?", (int(user_id),)
        )
        count, newest = rows[0]
        return int(count), None if newest is None else float(newest)

    async def delete_user(self, user_id: int) -> int:
        """Forget a member: ratings, hidden movies, watchlist, anything kept aside. Returns how many
        ratings were deleted."""
        user = int(user_id)

        async def body(tx: Tx) -> int:
            await tx.execute("DELETE FROM set_aside_ratings WHERE user_id = ?", (user,))
            await tx.execute("DELETE FROM hidden WHERE user_id = ?", (user,))
            await tx.execute("DELETE FROM watchlist WHERE user_id = ?", (user,))
            return len(await tx.fetch("DELETE FROM ratings WHERE user_id = ? RETURNING movie_id", (user,)))

        return await self._backend.run(body)

    async def count_ratings(self, since: float | None = None) -> int:
        """Ratings stored (or changed) after ``since`` (a unix time); all of them when None."""
        if since is None:
            rows = await self._backend.read("SELECT COUNT(*) FROM ratings")
        else:
            rows = await self._backend.read(
                "SELECT COUNT(*) FROM ratings WHERE rated_at > ?", (float(since),)
            )
        return int(rows[0][0])

    async def stats(self) -> dict[str, int]:
        rows = await self._backend.read(
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
        await self._backend.write(
            "INSERT INTO model_versions (version, family, metrics, trained_at, published, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET family = excluded.family, "
            "metrics = excluded.metrics, trained_at = excluded.trained_at, published = excluded.published, "
            "recorded_at = excluded.recorded_at",
            (
                str(version),
                str(family),
                _sql.dumps(dict(metrics)),
                float(trained_at),
                int(bool(published)),
                time.time(),
            ),
        )

    async def model_versions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent training runs, newest first (addition to the contract)."""
        rows = await self._backend.read(
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
        """SQLite: cap the file at its current size plus ``extra_pages`` (growth fails with SQLITE_FULL)."""
        await self._backend.limit_pages(extra_pages)  # type: ignore[attr-defined]
