"""The tables other features build on, on both backends: movie ids, hidden, watchlist, /unrate,
/import, retrain outcomes and locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.persistence.storage import ImportCounts, LockOwner, Storage

MOVIES = [Movie(i, f"Movie {i}", 2000, ("Drama",), imdb_id=100_000 + i, tmdb_id=i * 7) for i in range(1, 31)]


@pytest.fixture
async def store(location: Path | str):
    async with Storage(location) as s:
        await s.load_catalog("ml-test", MOVIES)
        yield s


async def test_imdb_and_tmdb_ids_are_stored_and_read_back(store: Storage) -> None:
    assert await store.get_movie(3) == MOVIES[2]
    assert (await store.all_movies())[:2] == MOVIES[:2]
    # a later load without links keeps the ids; one with other ids replaces them
    bare = [Movie(m.movie_id, m.title, m.year, m.genres) for m in MOVIES]
    await store.load_catalog("ml-test", bare)
    assert (await store.get_movie(3)).imdb_id == 100_003
    await store.load_catalog("ml-test", [Movie(3, "Movie 3", 2000, ("Drama",), 42, 43), *bare[3:]])
    moved = await store.get_movie(3)
    assert (moved.imdb_id, moved.tmdb_id) == (42, 43)


async def test_hide_and_unhide(store: Storage) -> None:
    assert await store.hide(7, 3, hidden_at=10.0) is True
    assert await store.hide(7, 3, hidden_at=11.0) is False  # already hidden
    assert await store.hide(7, 5, hidden_at=20.0) is True
    assert await store.hidden(7) == [5, 3]  # most recent first
    assert await store.hidden(8) == []
    assert await store.unhide(7, 3) is True
    assert await store.unhide(7, 3) is False
    assert await store.hidden(7) == [5]
    with pytest.raises(UnknownMovie):
        await store.hide(7, 9_999)


async def test_watchlist(store: Storage) -> None:
    assert await store.add_to_watchlist(7, 4, added_at=1.0)
    assert await store.add_to_watchlist(7, 2, added_at=2.0)
    assert not await store.add_to_watchlist(7, 4)
    assert await store.watchlist(7) == [2, 4]
    assert await store.remove_from_watchlist(7, 4)
    assert not await store.remove_from_watchlist(7, 4)
    assert await store.watchlist(7) == [2]
    with pytest.raises(UnknownMovie):
        await store.add_to_watchlist(7, 9_999)
    assert await store.watchlist(7) == [2]


async def test_a_movie_leaving_the_catalog_leaves_the_lists(store: Storage) -> None:
    await store.hide(1, 30)
    await store.add_to_watchlist(1, 30)
    await store.load_catalog("ml-test", MOVIES[:29])
    assert await store.hidden(1) == [] and await store.watchlist(1) == []


async def test_delete_rating(store: Storage) -> None:
    await store.upsert_rating(7, 1, 4.0, None)
    await store.upsert_rating(7, 2, 3.0, None)
    assert await store.delete_rating(7, 1) is True
    assert await store.delete_rating(7, 1) is False
    assert [r.movie_id for r in await store.user_ratings(7)] == [2]
    assert await store.ratings_fingerprint(7) == (1, (await store.user_ratings(7))[0].rated_at)


async def test_forget_deletes_ratings_hidden_and_watchlist(store: Storage) -> None:
    for movie in (1, 2, 3):
        await store.upsert_rating(7, movie, 3.0, None)
    await store.hide(7, 4)
    await store.add_to_watchlist(7, 5)
    await store.hide(8, 4)
    await store.add_to_watchlist(8, 5)
    assert await store.delete_user(7) == 3
    assert await store.user_ratings(7) == []
    assert await store.hidden(7) == [] and await store.watchlist(7) == []
    assert await store.hidden(8) == [4] and await store.watchlist(8) == [5]


async def test_import_counts_and_reimport_changes_nothing(store: Storage) -> None:
    await store.upsert_rating(7, 1, 2.0, 5, rated_at=100.0)  # older, different: updated
    await store.upsert_rating(7, 2, 4.0, 5, rated_at=100.0)  # same stars: unchanged
    await store.upsert_rating(7, 3, 1.0, 5, rated_at=900.0)  # newer in the bot: kept
    rows = [(1, 5.0, 200.0), (2, 4.0, 200.0), (3, 3.0, 200.0), (4, 2.5, 200.0), (5, 3.5, 150.0)]
    counts = await store.import_ratings(7, rows, guild_id=99)
    assert counts == ImportCounts(inserted=2, updated=1, unchanged=2) and counts.total == 5
    stored = {r.movie_id: (r.stars, r.rated_at, r.guild_id) for r in await store.user_ratings(7)}
    assert stored == {
        1: (5.0, 200.0, 99),
        2: (4.0, 100.0, 5),
        3: (1.0, 900.0, 5),
        4: (2.5, 200.0, 99),
        5: (3.5, 150.0, 99),
    }
    fingerprint = await store.ratings_fingerprint(7)
    assert await store.import_ratings(7, rows, guild_id=99) == ImportCounts(0, 0, 5)
    assert await store.ratings_fingerprint(7) == fingerprint


async def test_import_takes_the_newest_row_per_movie(store: Storage) -> None:
    counts = await store.import_ratings(7, [(1, 2.0, 300.0), (1, 4.0, 100.0)], None)
    assert counts == ImportCounts(1, 0, 0)
    assert [(r.stars, r.rated_at) for r in await store.user_ratings(7)] == [(2.0, 300.0)]


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([(1, 4.0, 1.0), (2, 9.0, 1.0)], ValueError),
        ([(1, 4.0, 1.0), (2, float("nan"), 1.0)], ValueError),
        ([(1, 4.0, float("inf"))], ValueError),
        ([(1, 4.0, 1.0), (9_999, 3.0, 1.0)], UnknownMovie),
    ],
)
async def test_a_bad_import_writes_nothing(store: Storage, rows: list, error: type[Exception]) -> None:
    await store.upsert_rating(7, 1, 2.0, None, rated_at=0.5)
    with pytest.raises(error):
        await store.import_ratings(7, rows, None)
    assert [(r.movie_id, r.stars) for r in await store.user_ratings(7)] == [(1, 2.0)]


async def test_retrain_outcomes_survive_a_reopen(location: Path | str) -> None:
    async with Storage(location) as s:
        assert await s.last_retrain() is None
        await s.record_retrain(
            started_at=10.0, finished_at=20.0, trigger="schedule", published=False, reason="not better"
        )
        await s.record_retrain(
            started_at=30.0,
            finished_at=95.5,
            trigger="admin:1234567890123456789",
            published=True,
            version="20250101-mf",
            metrics={"rmse": 0.91, "ndcg@5": 0.08},
        )
        with pytest.raises(ValueError, match="trigger"):
            await s.record_retrain(started_at=1.0, finished_at=2.0, trigger="someone", published=True)
    async with Storage(location) as s:
        assert await s.last_retrain() == {
            "started_at": 30.0,
            "finished_at": 95.5,
            "trigger": "admin:1234567890123456789",
            "published": True,
            "version": "20250101-mf",
            "reason": "",
            "metrics": {"rmse": 0.91, "ndcg@5": 0.08},
        }
        runs = await s.retrain_runs()
        assert [(r["trigger"], r["published"], r["version"], r["reason"]) for r in runs] == [
            ("admin:1234567890123456789", True, "20250101-mf", ""),
            ("schedule", False, None, "not better"),
        ]


async def test_retrain_history_is_bounded(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from recommender.persistence.storage import _runs

    monkeypatch.setattr(_runs, "KEEP_RETRAIN_RUNS", 3)
    for i in range(5):
        await store.record_retrain(started_at=i, finished_at=i + 0.5, trigger="schedule", published=False)
    assert [r["started_at"] for r in await store.retrain_runs(10)] == [4.0, 3.0, 2.0]


async def test_locks_find_the_running_trainer(location: Path | str) -> None:
    async with Storage(location) as bot, Storage(location) as restarted:
        assert await bot.lock_owner("trainer") is None
        assert await bot.try_lock("trainer", 4242, "gpu-box", acquired_at=5.0) is True
        assert await bot.try_lock("trainer", 4242, "gpu-box") is True  # the holder again
        assert await restarted.try_lock("trainer", 77, "bot-box") is False
        assert await restarted.lock_owner("trainer") == LockOwner(4242, "gpu-box", 5.0)
        assert await restarted.release_lock("trainer", 77, "bot-box") is False  # not its lock
        assert await bot.try_lock("other", 77, "bot-box") is True  # names are independent
        assert await bot.release_lock("trainer", 4242, "gpu-box") is True
        assert await restarted.try_lock("trainer", 77, "bot-box") is True
        assert await bot.release_lock("trainer") is True  # a holder known to be dead
        assert await bot.lock_owner("trainer") is None
        with pytest.raises(ValueError):
            await bot.release_lock("trainer", 77)


async def test_the_bot_hands_its_retrain_lock_to_the_trainer_with_what_started_it(
    location: Path | str,
) -> None:
    async with Storage(location) as bot, Storage(location) as other:
        assert await bot.try_lock("retrain", 100, "box", acquired_at=7.0, note="admin:42") is True
        assert await other.hand_over_lock("retrain", 101, "box", 555) is False  # not the holder
        assert await bot.hand_over_lock("retrain", 100, "box", 555) is True
        # the trainer's pid, with the time and the trigger kept: a restarted bot can judge and record it
        assert await other.lock_owner("retrain") == LockOwner(555, "box", 7.0, "admin:42")
        assert await bot.release_lock("retrain", 100, "box") is False  # the bot no longer holds it
        assert await bot.release_lock("retrain", 555, "box") is True
