"""SQLite through aiosqlite: one connection, WAL, transactions serialised by an asyncio lock.

Concurrency: aiosqlite runs the connection on one thread. Multi-statement work takes an
:class:`asyncio.Lock` so that transactions of different tasks never interleave on the shared
connection, and writes are shielded from cancellation so a cancelled caller can never leave a
transaction half-open.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiosqlite

from recommender.core.errors import StorageUnavailable
from recommender.persistence.backup import corrupt_message
from recommender.persistence.errors import ConstraintViolation, StorageCorrupt
from recommender.persistence.storage._backend import Row, check_known_version

log = logging.getLogger(__name__)
T = TypeVar("T")

# Primary SQLite result codes meaning "this database cannot take writes right now".
_UNAVAILABLE_CODES = {
    5,  # SQLITE_BUSY: another process held the write lock past busy_timeout
    8,  # SQLITE_READONLY: read-only file, directory or connection
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL: database or disk is full
    14,  # SQLITE_CANTOPEN
}
_UNAVAILABLE_TEXT = ("readonly database", "disk is full", "database is locked", "disk i/o error")
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_CORRUPT_TEXT = ("malformed", "file is not a database")
_CONSTRAINTS = {"FOREIGN KEY": "foreign_key", "CHECK": "check", "UNIQUE": "unique", "NOT NULL": "not_null"}


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_corrupt(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    return _code(exc) in _CORRUPT_CODES or any(t in str(exc).lower() for t in _CORRUPT_TEXT)


def _is_unavailable(exc: sqlite3.Error) -> bool:
    if _code(exc) in _UNAVAILABLE_CODES:
        return True
    return any(part in str(exc).lower() for part in _UNAVAILABLE_TEXT)


def db_uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


class _SqliteTx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, [tuple(r) for r in rows])

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in await self._db.execute_fetchall(sql, tuple(params))]


class SqliteBackend:
    dialect = "sqlite"

    def __init__(
        self, path: Path, *, read_only: bool, synchronous: str, busy_timeout_ms: int, backup_dir: Path
    ) -> None:
        self.path = path
        self.label = str(path)
        self.read_only = read_only
        self.backup_dir = backup_dir
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Storage is not open; use `async with Storage(path) as storage:`")
        return self._db

    async def connect(self) -> None:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.is_file() and self.path.stat().st_size > 0
        mode = "ro" if self.read_only else "rwc"
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, single statements autocommit
            db = await aiosqlite.connect(db_uri(self.path, mode), uri=True, isolation_level=None)
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
            if existed:
                # A damaged file must stop the start-up here, with a way out, not fail on a later page.
                problems = [r[0] for r in await db.execute_fetchall("PRAGMA quick_check")]
                if problems != ["ok"]:
                    self._raise_corrupt("; ".join(map(str, problems[:3])))
        except BaseException as exc:
            await db.close()
            if is_corrupt(exc):
                self._raise_corrupt(str(exc), exc)
            raise
        self._db = db

    def _raise_corrupt(self, detail: str, cause: BaseException | None = None) -> NoReturn:
        log.error("database %s is damaged: %s", self.path, detail)
        raise StorageCorrupt(corrupt_message(self.path, self.backup_dir, detail)) from cause

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    def _raise_translated(self, exc: BaseException) -> None:
        """Turn driver errors that have a domain meaning into domain errors; others pass through."""
        if not isinstance(exc, sqlite3.Error):
            return
        if isinstance(exc, sqlite3.IntegrityError):
            text = str(exc)
            kind = next((k for prefix, k in _CONSTRAINTS.items() if prefix in text), "check")
            raise ConstraintViolation(kind, text) from exc
        if _is_unavailable(exc):
            log.error("write to %s refused: %s", self.path, exc)
            raise StorageUnavailable(str(exc)) from exc
        if is_corrupt(exc):
            self._raise_corrupt(str(exc), exc)

    async def run(self, body: Callable[[_SqliteTx], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self._lock:
                db = self.db
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    result = await body(_SqliteTx(db))
                    await db.execute("COMMIT")
                    return result
                except BaseException as exc:
                    if db.in_transaction:
                        await db.rollback()
                    self._raise_translated(exc)
                    raise

        # shield: a cancelled caller must not abandon a transaction half-way on the shared connection
        return await asyncio.shield(go())

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async def go() -> list[Row]:
            async with self._lock:
                try:
                    return [tuple(r) for r in await self.db.execute_fetchall(sql, tuple(params))]
                except BaseException as exc:
                    self._raise_translated(exc)
                    raise

        return await asyncio.shield(go())

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # the lock keeps a read from seeing another task's uncommitted transaction on this connection
        async with self._lock:
            try:
                return [tuple(r) for r in await self.db.execute_fetchall(sql, tuple(params))]
            except BaseException as exc:
                self._raise_translated(exc)
                raise

    async def schema_version(self) -> int:
        async with self._lock:
            return await self._user_version()

    async def _user_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Sequence[Sequence[str]], target: int) -> None:
        current = await self.schema_version()
        check_known_version(current, len(migrations), self.label)
        for version in range(current, target):

            async def step(tx: _SqliteTx, version: int = version) -> None:
                for statement in migrations[version]:
                    await tx.execute(statement)
                # user_version lives in the file header and is part of the transaction
                await tx.execute(f"PRAGMA user_version = {version + 1}")

            await self.run(step)
            log.info("migrated %s to schema version %d", self.path, version + 1)

    async def limit_pages(self, extra_pages: int) -> None:
        """Cap the file at its current size plus ``extra_pages``: later growth fails with SQLITE_FULL."""
        async with self._lock:
            async with self.db.execute("PRAGMA page_count") as cur:
                pages = (await cur.fetchone())[0]
            await self.db.execute(f"PRAGMA max_page_count = {int(pages) + int(extra_pages)}")
