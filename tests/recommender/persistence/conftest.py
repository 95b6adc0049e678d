"""Storage fixtures: a fresh SQLite file or a fresh PostgreSQL database per test.

PostgreSQL tests need ``TEST_DATABASE_URL`` (a server where the user may CREATE DATABASE);
``make test`` and ``.ci/run`` start a throwaway one with ``.ci/postgres.sh``. Without it they fail
with that message: never a silent skip.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

T = TypeVar("T")


def postgres_admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        pytest.fail(
            "TEST_DATABASE_URL is not set, and the storage tests run against PostgreSQL as well as SQLite. "
            'Start a throwaway server with `eval "$(.ci/postgres.sh start)"` (make test and .ci/run do '
            "this), or point TEST_DATABASE_URL at a server where you may CREATE DATABASE.",
            pytrace=False,
        )
    return url


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a thread of its own (callable from inside a running loop)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def pg_execute(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on ``url`` outside any Storage; returns the last one's rows."""
    import asyncpg

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await conn.fetch(statement)
            return [tuple(r) for r in rows]
        finally:
            await conn.close()

    return run_sync(go)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of its own for this test, dropped afterwards."""
    admin = postgres_admin_url()
    name = f"test_{uuid.uuid4().hex[:16]}"
    pg_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin, name)
    finally:
        pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's database lives, once per backend."""
    if request.param == "sqlite":
        return tmp_path / "bot.sqlite3"
    return request.getfixturevalue("postgres_url")
