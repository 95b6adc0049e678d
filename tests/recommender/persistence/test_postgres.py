"""What only the PostgreSQL backend has to get right: several processes on one database."""

from __future__ import annotations

import asyncio

import pytest

from recommender.core.errors import StorageUnavailable
from recommender.core.types import Movie
from recommender.persistence.storage import SCHEMA_VERSION, Storage, read_member_ratings
from tests.recommender.persistence.conftest import pg_execute

MOVIES = [Movie(i, f"Movie {i}", 2000) for i in range(1, 21)]


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [Storage(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))  # the advisory lock serialises them
        assert [await s.schema_version() for s in stores] == [SCHEMA_VERSION] * 4
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert pg_execute(postgres_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


async def test_two_processes_share_ratings(postgres_url: str) -> None:
    async with Storage(postgres_url) as shard_a, Storage(postgres_url) as shard_b:
        await shard_a.load_catalog("ml-test", MOVIES)
        await shard_a.upsert_rating(1, 5, 4.0, 10, rated_at=100.0)
        _, previous = await shard_b.upsert_rating(1, 5, 2.0, 20, rated_at=200.0)
        assert previous == 4.0
        assert [(r.stars, r.guild_id) for r in await shard_a.user_ratings(1)] == [(2.0, 20)]
        # many members at once, spread over the pool's connections
        await asyncio.gather(
            *(s.upsert_rating(u, 1 + u % 20, 3.0, None) for u in range(2, 60) for s in (shard_a, shard_b))
        )
        assert await shard_b.count_ratings() == 59
    frame = read_member_ratings(postgres_url)  # the trainer, another process in production
    assert len(frame) == 59 and frame["user_id"].dtype == "int64"


def test_read_member_ratings_before_any_table(postgres_url: str) -> None:
    frame = read_member_ratings(postgres_url)
    assert frame.empty and list(frame.columns) == ["user_id", "movie_id", "rating", "timestamp"]


async def test_an_unreachable_server_is_unavailable_and_the_password_stays_secret() -> None:
    url = "postgresql://bot:hunter2-secret@127.0.0.1:1/moviebot"  # nothing listens on port 1
    with pytest.raises(StorageUnavailable) as caught:
        await Storage(url).open()
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert Storage(url).label == "postgresql://bot:***@127.0.0.1:1/moviebot"
    with pytest.raises(StorageUnavailable) as caught:
        read_member_ratings(url)
    assert "hunter2" not in str(caught.value)


async def test_the_server_going_away_mid_run_is_unavailable(postgres_url: str) -> None:
    async with Storage(postgres_url, pool_size=1) as s:
        await s.load_catalog("ml-test", MOVIES)
        pg_execute(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'moviebot' AND datname = current_database()",
        )
        with pytest.raises(StorageUnavailable):
            await s.upsert_rating(1, 1, 3.0, None)
        _, previous = await s.upsert_rating(1, 1, 3.0, None)  # the pool reconnects
        assert previous is None
