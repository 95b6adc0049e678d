"""What :class:`Storage` needs from a database: one transaction, one statement, one read.

SQL is written once with ``?`` placeholders; a backend translates it to its driver's style.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from recommender.persistence.errors import StorageError

__all__ = ["Backend", "Row", "Tx", "check_known_version", "is_postgres_url", "numbered", "redact_url"]

T = TypeVar("T")
Row = tuple[Any, ...]


class Tx(Protocol):
    """The statements of one open transaction."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Backend(Protocol):
    dialect: str
    label: str  # for messages and logs: a path, or a URL without its password

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def run(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """``body`` in one write transaction: all of it commits, or nothing does."""
        ...

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One autocommit statement (atomic on its own); returns any RETURNING rows."""
        ...

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    async def schema_version(self) -> int: ...
    async def migrate(self, migrations: Sequence[Sequence[str]], target: int) -> None: ...


def is_postgres_url(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...`` (PostgreSQL), leaving quoted text alone."""
    out: list[str] = []
    n, quoted = 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
    return "".join(out)


def check_known_version(current: int, known: int, label: str) -> None:
    if current > known:
        raise StorageError(
            f"{label} has schema version {current}, newer than this code knows ({known}); "
            "upgrade the bot or point BOT_DATA_DIR (or DATABASE_URL) elsewhere"
        )
