"""Added movies and the dataset switch, on both backends: one transaction, nothing silently deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.core.errors import UnknownMovie
from recommender.core.types import HALF, WHOLE, Movie
from recommender.persistence.errors import ConstraintViolation
from recommender.persistence.storage import (
    ADDED_ID_BASE,
    Storage,
    StorageError,
    read_added_movies,
    read_member_ratings,
)
from recommender.persistence.storage._catalogue import on_scale

OLD = [Movie(i, f"Old {i}", 1990 + i, ("Drama",)) for i in range(1, 11)]
# the "new" dataset: old 1..5 are 101..105 here, old 6 and 7 both became 106, old 8..10 are gone
NEW = [Movie(100 + i, f"Old {i}", 1990 + i, ("Drama",), imdb_id=i) for i in range(1, 7)]
NEW += [Movie(200, "Only New", 2020, ("Comedy",))]
MAPPING = {1: 101, 2: 102, 3: 103, 4: 104, 5: 105, 6: 106, 7: 106}
POPULARITY = {101: (10, 4.0, 3.9), 200: (3, 3.0, 3.1)}
ALICE, BOB = 11, 22


@pytest.fixture
async def store(location: Path | str):
    async with Storage(location) as s:
        await s.load_catalog("ml-100k", OLD, {1: (5, 4.0, 3.8)})
        await s.upsert_rating(ALICE, 1, 4.0, 7, rated_at=100.0)
        await s.upsert_rating(ALICE, 6, 2.0, 7, rated_at=100.0)
        await s.upsert_rating(ALICE, 7, 5.0, 7, rated_at=200.0)  # newer: wins the merge into 106
        await s.upsert_rating(ALICE, 9, 3.0, 7, rated_at=150.0)  # no match in NEW: kept aside
        await s.upsert_rating(BOB, 2, 1.0, None, rated_at=120.0)
        await s.hide(BOB, 3, hidden_at=5.0)
        await s.hide(BOB, 10, hidden_at=6.0)
        await s.add_to_watchlist(ALICE, 4, added_at=7.0)
        yield s


async def _snapshot(s: Storage) -> tuple:
    return (
        await s.catalog_dataset(),
        await s.all_movies(),
        await s.user_ratings(ALICE),
        await s.user_ratings(BOB),
        await s.hidden(BOB),
        await s.watchlist(ALICE),
        await s.popularity(),
        await s.set_aside_ratings(),
    )


async def test_switch_rewrites_every_mapped_row_and_keeps_the_rest_aside(store: Storage) -> None:
    counts = await store.switch_catalog("ml-latest-small", NEW, POPULARITY, MAPPING, scale=HALF)
    assert await store.catalog_dataset() == "ml-latest-small"
    assert {m.movie_id for m in await store.all_movies()} == {m.movie_id for m in NEW}
    assert await store.popularity() == POPULARITY
    alice = {r.movie_id: (r.stars, r.rated_at) for r in await store.user_ratings(ALICE)}
    assert alice == {101: (4.0, 100.0), 106: (5.0, 200.0)}
    assert [r.movie_id for r in await store.user_ratings(BOB)] == [102]
    assert await store.hidden(BOB) == [103]
    assert await store.watchlist(ALICE) == [104]
    assert counts.moved == {"rating": 3, "hidden": 1, "watchlist": 1}
    assert counts.set_aside == {"rating": 1, "hidden": 1, "watchlist": 0}
    assert counts.merged == 1
    aside = {(a.user_id, a.kind, a.movie_id): a for a in await store.set_aside_ratings()}
    assert set(aside) == {(ALICE, "rating", 9), (ALICE, "rating", 6), (BOB, "hidden", 10)}
    nine = aside[(ALICE, "rating", 9)]
    assert (nine.dataset, nine.title, nine.year, nine.stars, nine.rated_at) == (
        "ml-100k",
        "Old 9",
        1999,
        3.0,
        150.0,
    )
    assert "newer" in aside[(ALICE, "rating", 6)].reason
    assert aside[(BOB, "hidden", 10)].stars is None
    # the trainer reads the new ids
    assert set(read_member_ratings(store.location)["movie_id"]) == {101, 102, 106}


async def test_a_failure_midway_leaves_the_old_catalogue_and_ratings_untouched(store: Storage) -> None:
    before = await _snapshot(store)
    broken = [*NEW, Movie(300, None, 2000)]  # type: ignore[arg-type]  # title NOT NULL: fails after the deletes
    with pytest.raises(ConstraintViolation):
        await store.switch_catalog("ml-latest-small", broken, POPULARITY, MAPPING, scale=HALF)
    assert await _snapshot(store) == before
    assert await store.set_aside_ratings() == []


async def test_stars_move_onto_the_new_scale() -> None:
    assert on_scale(3.5, WHOLE) == 4.0 and on_scale(0.5, WHOLE) == 1.0 and on_scale(4.0, WHOLE) == 4.0
    assert on_scale(4.0, HALF) == 4.0


async def test_added_movies_get_ids_above_any_dataset_and_survive_a_reload(store: Storage) -> None:
    first = await store.add_movie(Movie(0, "Brand New", 2025, ("Drama",), imdb_id=1234567), added_by=99)
    second = await store.add_movie(Movie(0, "Newer Still", 2026, ("Comedy",)), added_by=99)
    assert first.movie_id == ADDED_ID_BASE and second.movie_id == ADDED_ID_BASE + 1
    assert await store.get_movie(first.movie_id) == first
    await store.load_catalog("ml-100k", OLD)  # a restart's reload keeps admins' movies
    added = await store.added_movies()
    assert [(a.movie.movie_id, a.added_by) for a in added] == [(first.movie_id, 99), (second.movie_id, 99)]
    await store.upsert_rating(ALICE, first.movie_id, 4.0, None)
    frame = read_added_movies(store.location)
    assert list(frame["movie_id"]) == [first.movie_id, second.movie_id]
    assert frame["genres"].iloc[0] == ("Drama",) and int(frame["imdb_id"].iloc[0]) == 1234567

    edited = Movie(first.movie_id, "Brand New (Director's Cut)", 2024, ("Drama", "Comedy"), 7654321)
    await store.edit_added_movie(edited, edited_by=98)
    assert await store.get_movie(first.movie_id) == edited
    with pytest.raises(UnknownMovie):  # never a dataset movie
        await store.edit_added_movie(Movie(1, "Hijacked", 2000), edited_by=98)
    assert (await store.get_movie(1)).title == "Old 1"


async def test_removing_an_added_movie_keeps_its_ratings_aside(store: Storage) -> None:
    movie = await store.add_movie(Movie(0, "Mistake", 2025, ("Drama",)), added_by=99)
    await store.upsert_rating(ALICE, movie.movie_id, 2.5, None, rated_at=300.0)
    await store.add_to_watchlist(BOB, movie.movie_id, added_at=301.0)
    with pytest.raises(UnknownMovie):
        await store.remove_added_movie(1, removed_by=99)  # a dataset movie
    counts = await store.remove_added_movie(movie.movie_id, removed_by=99)
    assert counts == {"rating": 1, "hidden": 0, "watchlist": 1}
    assert await store.get_movie(movie.movie_id) is None and await store.added_movies() == []
    assert movie.movie_id not in {r.movie_id for r in await store.user_ratings(ALICE)}
    [rating] = await store.set_aside_ratings(ALICE)
    assert (rating.movie_id, rating.title, rating.stars, rating.dataset) == (
        movie.movie_id,
        "Mistake",
        2.5,
        "added",
    )
    assert "removed by admin 99" in rating.reason
    await store.delete_user(ALICE)  # /forget takes what was kept aside too
    assert await store.set_aside_ratings(ALICE) == []


async def test_added_movies_follow_a_switch(store: Storage) -> None:
    kept = await store.add_movie(Movie(0, "Not In Any Dataset", 2025, ("Drama",)), added_by=1)
    found = await store.add_movie(Movie(0, "Only New", 2020, ("Comedy",)), added_by=1)
    await store.upsert_rating(ALICE, kept.movie_id, 4.5, None, rated_at=400.0)
    await store.upsert_rating(BOB, found.movie_id, 3.0, None, rated_at=400.0)
    mapping = {**MAPPING, found.movie_id: 200}  # the new dataset holds it now
    counts = await store.switch_catalog(
        "ml-latest-small", NEW, POPULARITY, mapping, scale=HALF, keep_added=[kept.movie_id]
    )
    assert counts.added_kept == 1
    assert [a.movie.movie_id for a in await store.added_movies()] == [kept.movie_id]
    assert {r.movie_id for r in await store.user_ratings(ALICE)} == {101, 106, kept.movie_id}
    assert {r.movie_id for r in await store.user_ratings(BOB)} == {102, 200}


async def test_an_added_id_colliding_with_the_new_dataset_is_refused(store: Storage) -> None:
    before = await _snapshot(store)
    clash = [*NEW, Movie(ADDED_ID_BASE, "Clash", 2000)]
    with pytest.raises(StorageError):
        await store.switch_catalog("ml-32m", clash, {}, MAPPING, scale=HALF, keep_added=[ADDED_ID_BASE])
    assert await _snapshot(store) == before
