"""Storage on both backends (a real SQLite file in tmp_path, a fresh PostgreSQL database):
migrations, upserts, failures, concurrency, crashes. SQLite-only tests take ``tmp_path``."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.core.errors import StorageUnavailable, UnknownMovie
from recommender.core.types import Movie
from recommender.persistence.storage import SCHEMA_VERSION, Storage, StorageError, read_member_ratings
from recommender.persistence.storage import migrations as storage_module
from tests.recommender.persistence.conftest import pg_execute

ROOT = Path(__file__).resolve().parents[3]
MOVIES = [
    Movie(i, f"Movie {i}", 1990 + i % 30, ("Drama",) if i % 2 else ("Comedy", "Romance"))
    for i in range(1, 201)
]
SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits; floats would corrupt them


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def _is_postgres(location: Path | str) -> bool:
    return isinstance(location, str)


async def _table_exists(s: Storage, name: str) -> bool:
    sql = (
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = ?"
        if s.dialect == "postgresql"
        else "SELECT COUNT(*) FROM sqlite_master WHERE name = ?"
    )
    return (await s._backend.read(sql, (name,)))[0][0] > 0


@pytest.fixture
async def store(location: Path | str):
    async with Storage(location) as s:
        await s.load_catalog("ml-test", MOVIES, {1: (10, 4.2, 4.0), 2: (3, 2.0, 3.1)})
        yield s


@pytest.fixture
async def sqlite_store(tmp_path: Path):
    async with Storage(tmp_path / "bot.sqlite3") as s:
        await s.load_catalog("ml-test", MOVIES, {1: (10, 4.2, 4.0), 2: (3, 2.0, 3.1)})
        yield s


# -- schema --------------------------------------------------------------------------------------
async def test_migrates_empty_database_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bot.sqlite3"
    async with Storage(path) as s:
        assert await s.schema_version() == SCHEMA_VERSION == len(storage_module.MIGRATIONS)
        assert await s.stats() == {"ratings": 0, "members": 0, "movies": 0}
        assert await s.catalog_dataset() is None
        async with s.db.execute("PRAGMA foreign_keys") as cur:
            assert (await cur.fetchone())[0] == 1
        async with s.db.execute("PRAGMA synchronous") as cur:
            assert (await cur.fetchone())[0] == 1  # NORMAL
        async with s.db.execute("PRAGMA busy_timeout") as cur:
            assert (await cur.fetchone())[0] == 5000
    assert _pragma(path, "journal_mode") == "wal"  # persistent in the file
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_reopen_is_idempotent_and_keeps_data(location: Path | str) -> None:
    path = location
    async with Storage(path) as s:
        await s.load_catalog("ml-test", MOVIES)
        await s.upsert_rating(7, 3, 4.5, 99)
    for _ in range(2):
        async with Storage(path) as s:
            assert await s.schema_version() == SCHEMA_VERSION
            assert [r.stars for r in await s.user_ratings(7)] == [4.5]
            assert len(await s.all_movies()) == len(MOVIES)


async def test_upgrades_an_older_schema_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = sqlite3.connect(path)
    for statement in storage_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO movies (id, title, year, genres, dataset) VALUES (5, 'Old', 1999, '', 'ml-test')"
    )
    conn.execute("INSERT INTO ratings (user_id, movie_id, stars, rated_at) VALUES (1, 5, 3.0, 100.0)")
    conn.commit()
    conn.close()
    async with Storage(path) as s:
        assert await s.schema_version() == SCHEMA_VERSION
        assert [(r.movie_id, r.stars) for r in await s.user_ratings(1)] == [(5, 3.0)]
        assert await s.popularity() == {}  # table from migration 2 exists and is empty


async def test_failed_migration_leaves_previous_version(
    location: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    async with Storage(location) as s:
        broken = ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
        monkeypatch.setattr(storage_module, "MIGRATIONS", (*storage_module.MIGRATIONS, broken))
        error = asyncpg.PostgresSyntaxError if _is_postgres(location) else sqlite3.OperationalError
        with pytest.raises(error):
            await s._migrate(target=SCHEMA_VERSION + 1)
        assert await s.schema_version() == SCHEMA_VERSION
        assert not await _table_exists(s, "half_done")
    if not _is_postgres(location):
        conn = sqlite3.connect(location)
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
        conn.close()


async def test_refuses_a_schema_from_the_future(location: Path | str) -> None:
    path = location
    async with Storage(path):
        pass
    if _is_postgres(location):
        pg_execute(location, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 5}")
    else:
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
        conn.close()
    with pytest.raises(StorageError, match="newer"):
        async with Storage(path):
            pass


# -- catalog -------------------------------------------------------------------------------------
async def test_load_catalog_is_idempotent_and_keeps_popularity(store: Storage) -> None:
    assert await store.catalog_dataset() == "ml-test"
    assert await store.get_movie(2) == MOVIES[1]
    assert await store.get_movie(10_000) is None
    assert await store.popularity() == {1: (10, 4.2, 4.0), 2: (3, 2.0, 3.1)}
    assert await store.load_catalog("ml-test", MOVIES) == len(MOVIES)
    assert await store.all_movies() == MOVIES
    assert await store.popularity() == {1: (10, 4.2, 4.0), 2: (3, 2.0, 3.1)}  # None keeps it
    await store.load_catalog("ml-test", MOVIES, {3: (1, 5.0, 3.5)})
    assert await store.popularity() == {3: (1, 5.0, 3.5)}  # a mapping replaces it


async def test_load_catalog_drops_stale_movies_unless_rated(store: Storage) -> None:
    await store.upsert_rating(1, 200, 4.0, None)
    assert await store.load_catalog("ml-test", MOVIES[:100]) == 101  # 199 went, 200 is rated and stays
    assert await store.get_movie(199) is None
    assert await store.get_movie(200) == MOVIES[199]


async def test_switching_dataset_with_member_ratings_is_refused(store: Storage) -> None:
    await store.upsert_rating(1, 5, 4.0, None)
    with pytest.raises(StorageError, match="ml-test"):
        await store.load_catalog("ml-other", [Movie(1, "Other", 2001)])
    assert await store.catalog_dataset() == "ml-test"
    assert await store.get_movie(1) == MOVIES[0]
    await store.delete_user(1)
    assert await store.load_catalog("ml-other", [Movie(1, "Other", 2001)]) == 1
    assert await store.catalog_dataset() == "ml-other"


# -- ratings -------------------------------------------------------------------------------------
async def test_upsert_returns_previous_and_keeps_the_latest(store: Storage) -> None:
    first, previous = await store.upsert_rating(SNOWFLAKE, 3, 2.5, 111, rated_at=1000.0)
    assert previous is None
    assert first.user_id == SNOWFLAKE and first.stars == 2.5 and first.guild_id == 111
    second, previous = await store.upsert_rating(SNOWFLAKE, 3, 4.0, 222, rated_at=2000.0)
    assert previous == 2.5
    assert second.stars == 4.0
    _, previous = await store.upsert_rating(SNOWFLAKE, 3, 5.0, None, rated_at=3000.0)
    assert previous == 4.0
    await store.upsert_rating(SNOWFLAKE, 4, 1.0, 111, rated_at=2500.0)
    rows = await store.user_ratings(SNOWFLAKE)
    assert [(r.movie_id, r.stars, r.guild_id, r.rated_at) for r in rows] == [
        (3, 5.0, None, 3000.0),  # newest first, one row per movie
        (4, 1.0, 111, 2500.0),
    ]
    assert await store.stats() == {"ratings": 2, "members": 1, "movies": len(MOVIES)}
    assert await store.count_ratings() == 2
    assert await store.count_ratings(since=2600.0) == 1


async def test_upsert_rejects_unknown_movie_and_bad_stars(store: Storage) -> None:
    with pytest.raises(UnknownMovie):
        await store.upsert_rating(1, 99_999, 3.0, None)
    for bad in (0.0, 5.5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            await store.upsert_rating(1, 1, bad, None)
    assert await store.count_ratings() == 0


async def test_upsert_default_timestamp_is_now(store: Storage) -> None:
    before = time.time()
    rating, _ = await store.upsert_rating(1, 1, 3.0, None)
    assert before <= rating.rated_at <= time.time()


async def test_delete_user_removes_only_that_member(store: Storage) -> None:
    for movie in (1, 2, 3):
        await store.upsert_rating(10, movie, 3.0, None)
        await store.upsert_rating(20, movie, 4.0, None)
    assert await store.delete_user(10) == 3
    assert await store.user_ratings(10) == []
    assert [r.movie_id for r in await store.user_ratings(20)] != []
    assert len(await store.user_ratings(20)) == 3
    assert await store.delete_user(10) == 0
    assert await store.stats() == {"ratings": 3, "members": 1, "movies": len(MOVIES)}


async def test_model_versions_are_recorded(store: Storage) -> None:
    await store.record_model_version("v1", "mf", {"rmse": np.float32(0.9), "n": np.int64(3)}, 100.0, True)
    await store.record_model_version("v2", "mlp", {"rmse": 1.1}, 200.0, False)
    versions = await store.model_versions()
    assert [(v["version"], v["family"], v["published"]) for v in versions] == [
        ("v2", "mlp", False),
        ("v1", "mf", True),
    ]
    assert versions[1]["metrics"] == {"n": 3, "rmse": pytest.approx(0.9)}


# -- failures: nothing half-written --------------------------------------------------------------
async def test_read_only_database_raises_storage_unavailable_and_changes_nothing(
    location: Path | str,
) -> None:
    path = location
    async with Storage(path) as s:
        await s.load_catalog("ml-test", MOVIES)
        await s.upsert_rating(1, 1, 3.0, None, rated_at=50.0)
    # Tests run as root, where chmod does not stop writes; mode=ro makes SQLite refuse them for real,
    # default_transaction_read_only PostgreSQL.
    async with Storage(path, read_only=True) as s:
        with pytest.raises(StorageUnavailable):
            await s.upsert_rating(1, 1, 5.0, None)
        with pytest.raises(StorageUnavailable):
            await s.upsert_rating(2, 2, 5.0, None)
        with pytest.raises(StorageUnavailable):
            await s.delete_user(1)
        with pytest.raises(StorageUnavailable):
            await s.load_catalog("ml-test", [*MOVIES, Movie(9999, "New", 2020)], {1: (1, 1.0, 1.0)})
        with pytest.raises(StorageUnavailable):
            await s.record_model_version("v1", "mf", {}, 1.0, True)
        with pytest.raises(StorageUnavailable):
            await s.hide(1, 1)
        with pytest.raises(StorageUnavailable):
            await s.import_ratings(1, [(2, 4.0, 60.0)], None)
        # reads still work
        assert [r.stars for r in await s.user_ratings(1)] == [3.0]
    async with Storage(path) as s:
        assert [(r.movie_id, r.stars, r.rated_at) for r in await s.user_ratings(1)] == [(1, 3.0, 50.0)]
        assert await s.stats() == {"ratings": 1, "members": 1, "movies": len(MOVIES)}
        assert await s.get_movie(9999) is None
        assert await s.popularity() == {}
        assert await s.model_versions() == []


async def test_full_disk_raises_storage_unavailable_and_rolls_back(sqlite_store: Storage) -> None:
    store = sqlite_store
    await store.upsert_rating(1, 1, 3.0, None)
    await store._limit_pages_for_tests(0)  # SQLite's own page cap: growth fails with SQLITE_FULL
    big = [Movie(10_000 + i, "A long title to fill pages " * 4, 2000) for i in range(5_000)]
    with pytest.raises(StorageUnavailable, match="full"):
        await store.load_catalog("ml-test", [*MOVIES, *big], {m.movie_id: (1, 3.0, 3.0) for m in big})
    assert await store.get_movie(10_000) is None
    assert len(await store.all_movies()) == len(MOVIES)
    assert await store.popularity() == {1: (10, 4.2, 4.0), 2: (3, 2.0, 3.1)}
    # the connection is still usable for writes that fit
    _, previous = await store.upsert_rating(1, 1, 4.0, None)
    assert previous == 3.0


async def test_write_lock_held_elsewhere_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Storage(path, busy_timeout_ms=200) as s:
        await s.load_catalog("ml-test", MOVIES)
        other = sqlite3.connect(path, isolation_level=None)  # e.g. an admin's sqlite3 shell
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                await s.upsert_rating(1, 1, 3.0, None)
            assert time.monotonic() - started < 5
        finally:
            other.execute("ROLLBACK")
            other.close()
        _, previous = await s.upsert_rating(1, 1, 3.0, None)  # works again once the lock is gone
        assert previous is None


async def test_cancelled_write_leaves_the_connection_usable(store: Storage) -> None:
    tasks = [asyncio.create_task(store.upsert_rating(5, m, 2.0, None)) for m in range(1, 51)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    _, previous = await store.upsert_rating(5, 2, 3.0, None)  # a cancelled-looking write may have landed
    assert previous in (None, 2.0)
    assert await store.count_ratings() >= 25
    # the writes nobody cancelled all completed: none of them ended in an exception
    assert [r for r in results[1::2] if isinstance(r, BaseException)] == []


# -- concurrency and crashes ---------------------------------------------------------------------
async def test_concurrent_upserts_all_land(store: Storage) -> None:
    confirmed: dict[tuple[int, int], float] = {}

    async def member(user: int) -> None:
        for i in range(10):
            movie = 1 + (user * 7 + i * 13) % len(MOVIES)
            stars = 0.5 + ((user + i) % 10) / 2
            rating, _ = await store.upsert_rating(user, movie, stars, guild_id=user % 3)
            confirmed[(rating.user_id, rating.movie_id)] = rating.stars

    await asyncio.gather(*(member(u) for u in range(100)))
    assert len(confirmed) == 1_000
    frame = read_member_ratings(store.location)
    stored = {
        (int(u), int(m)): float(r) for u, m, r in frame[["user_id", "movie_id", "rating"]].itertuples(False)
    }
    assert stored == confirmed
    assert await store.stats() == {"ratings": 1_000, "members": 100, "movies": len(MOVIES)}


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from recommender.persistence.storage import Storage

    async def main(path):
        async with Storage(path) as s:
            for i in range(1_000_000):
                user, movie, stars = 1 + i // 50, 1 + i % 50, 0.5 + (i % 10) / 2
                await s.upsert_rating(user, movie, stars, None)
                print(user, movie, stars, flush=True)  # only after the call returned

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.slow
def test_sigkill_mid_burst_loses_no_confirmed_rating(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    asyncio.run(_load_catalog(path))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: list[bytes] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while len(lines) < 500:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child exited early: {child.wait()} {child.stderr.read().decode()[-2000:]}")
            lines.append(line)
            assert time.monotonic() < deadline, "child too slow to confirm 500 ratings"
        os.kill(child.pid, signal.SIGKILL)
        lines.extend(child.stdout.readlines())  # whatever it confirmed before dying
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the child must die by SIGKILL, mid-burst"
    confirmed = {}
    for line in lines:
        if line.endswith(b"\n"):
            user, movie, stars = line.split()
            confirmed[(int(user), int(movie))] = float(stars)
    assert len(confirmed) >= 500
    frame = read_member_ratings(path)
    stored = {
        (int(u), int(m)): float(r) for u, m, r in frame[["user_id", "movie_id", "rating"]].itertuples(False)
    }
    missing = {k: v for k, v in confirmed.items() if stored.get(k) != v}
    assert not missing, f"{len(missing)} confirmed ratings lost, e.g. {list(missing.items())[:5]}"
    assert asyncio.run(_count(path)) >= len(confirmed)  # and the database reopens cleanly for the bot


async def _load_catalog(path: Path) -> None:
    async with Storage(path) as s:
        await s.load_catalog("ml-test", MOVIES)


async def _count(path: Path) -> int:
    async with Storage(path) as s:
        return await s.count_ratings()


# -- training reader -----------------------------------------------------------------------------
def test_read_member_ratings_without_database(tmp_path: Path) -> None:
    frame = read_member_ratings(tmp_path / "missing.sqlite3")
    assert frame.empty
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "user_id": "int64",
        "movie_id": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    assert not (tmp_path / "missing.sqlite3").exists()


async def test_read_member_ratings_types_and_values(store: Storage) -> None:
    await store.upsert_rating(SNOWFLAKE, 2, 4.5, 1, rated_at=1_700_000_000.7)
    await store.upsert_rating(3, 1, 0.5, None, rated_at=1_600_000_000.0)
    frame = read_member_ratings(store.location)  # while the bot's connection is open
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "user_id": "int64",
        "movie_id": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    assert frame.to_dict("records") == [
        {"user_id": 3, "movie_id": 1, "rating": 0.5, "timestamp": 1_600_000_000},
        {"user_id": SNOWFLAKE, "movie_id": 2, "rating": 4.5, "timestamp": 1_700_000_000},
    ]


async def test_read_member_ratings_after_the_bot_closed(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Storage(path) as s:
        await s.load_catalog("ml-test", MOVIES)
        await s.upsert_rating(5, 1, 3.0, None)
    assert not (tmp_path / "bot.sqlite3-wal").exists()  # checkpointed on close
    assert read_member_ratings(path)["user_id"].tolist() == [5]


def test_read_member_ratings_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    sqlite3.connect(path).close()  # an empty file: no tables yet
    assert read_member_ratings(path).empty
    assert path.stat().st_size == 0
