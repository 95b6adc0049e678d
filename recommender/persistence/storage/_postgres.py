"""PostgreSQL through asyncpg: a small connection pool per process, so several bot processes and
a trainer on another machine share one database.

Each transaction runs on its own pooled connection (no process-wide lock as on SQLite); the schema
is migrated under an advisory lock so that processes starting together never race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg

from recommender.core.errors import StorageUnavailable
from recommender.persistence.errors import ConstraintViolation
from recommender.persistence.storage._backend import Row, check_known_version, numbered, redact_url
from recommender.persistence.storage.migrations import for_dialect

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATION_LOCK = 0x6D6F766965  # any constant shared by every process of this project
_CONSTRAINTS = {"23503": "foreign_key", "23514": "check", "23505": "unique", "23502": "not_null"}
# SQLSTATE classes and codes meaning "the server cannot take this right now": connection problems,
# insufficient resources (disk full, too many connections), operator intervention (shutdown),
# a read-only transaction, a lock not available.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_CODES = ("25006", "55P03")


def translate(exc: BaseException, label: str) -> BaseException | None:
    """The domain error for a driver error, or None to let it pass through."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        if state in _CONSTRAINTS:
            return ConstraintViolation(_CONSTRAINTS[state], str(exc))
        if state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES:
            return StorageUnavailable(str(exc))
        return None
    if isinstance(exc, asyncpg.InterfaceError | OSError | TimeoutError):
        return StorageUnavailable(f"lost the database at {label}: {exc}")
    return None


class _PostgresTx:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(numbered(sql), *params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            await self._conn.executemany(numbered(sql), batch)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in await self._conn.fetch(numbered(sql), *params)]


class PostgresBackend:
    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool, pool_size: int, connect_timeout: float = 10.0) -> None:
        self._url = url  # holds the password: never logged, never in a message
        self.label = redact_url(url)
        self.read_only = read_only
        self._pool_size = pool_size
        self._timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Storage is not open; use `async with Storage(url) as storage:`")
        return self._pool

    async def connect(self) -> None:
        settings = {"application_name": "moviebot"}
        if self.read_only:
            settings["default_transaction_read_only"] = "on"
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._timeout,
                server_settings=settings,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageUnavailable(f"cannot connect to {self.label}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _guarded(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        try:
            async with self.pool.acquire() as conn:
                return await work(conn)
        except BaseException as exc:
            domain = translate(exc, self.label)
            if domain is not None:
                log.error("database %s refused: %s", self.label, exc)
                raise domain from exc
            raise

    async def run(self, body: Callable[[_PostgresTx], Awaitable[T]]) -> T:
        async def work(conn: asyncpg.Connection) -> T:
            async with conn.transaction():
                return await body(_PostgresTx(conn))

        # shield: as on SQLite, a cancelled caller never leaves a transaction half-way
        return await asyncio.shield(self._guarded(work))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async def work(conn: asyncpg.Connection) -> list[Row]:
            return [tuple(r) for r in await conn.fetch(numbered(sql), *params)]

        return await asyncio.shield(self._guarded(work))

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async def work(conn: asyncpg.Connection) -> list[Row]:
            return [tuple(r) for r in await conn.fetch(numbered(sql), *params)]

        return await self._guarded(work)

    async def schema_version(self) -> int:
        return await self._guarded(self._version)

    @staticmethod
    async def _version(conn: asyncpg.Connection) -> int:
        try:
            value = await conn.fetchval("SELECT version FROM schema_version")
        except asyncpg.UndefinedTableError:
            return 0
        return int(value or 0)

    async def migrate(self, migrations: Sequence[Sequence[str]], target: int) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            current = await self._version(conn)
            check_known_version(current, len(migrations), self.label)
            if current >= target:
                return  # nothing to do: no lock, and a read-only process never needs to write
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                if await conn.fetchval("SELECT count(*) FROM schema_version") == 0:
                    await conn.execute("INSERT INTO schema_version VALUES (0)")
                current = await self._version(conn)  # another process may have migrated meanwhile
                check_known_version(current, len(migrations), self.label)
                for version in range(current, target):
                    async with conn.transaction():
                        for statement in migrations[version]:
                            await conn.execute(for_dialect(statement, "postgresql"))
                        await conn.execute("UPDATE schema_version SET version = $1", version + 1)
                    log.info("migrated %s to schema version %d", self.label, version + 1)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

        await self._guarded(work)
