"""Movies added by admins in the real service: rateable at once, served by content until learned;
and a model trained on another dataset than the catalogue's is never served."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recommender.core.errors import DuplicateMovie, InvalidMovieDetails, NotAddedMovie
from recommender.persistence.registry import Registry
from recommender.persistence.storage import ADDED_ID_BASE, Storage
from recommender.serving.catalog import Catalog
from recommender.serving.contract import ContentReason, PickReason, PopularityReason, ServingPath
from recommender.serving.service import RecommenderService

from .service_fakes import CLUSTER_A, CLUSTER_B, HALF, make_model, movies, popularity, publish

ALICE, BOB = 111, 222


@pytest.fixture
async def storage(tmp_path: Path):
    async with Storage(tmp_path / "bot.sqlite3") as storage:
        await storage.load_catalog("ml-latest-small", movies(), popularity())
        yield storage


def make_service(storage: Storage, registry: Registry, **kwargs: object) -> RecommenderService:
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[0] for m, p in popularity().items()}),
        registry,
        HALF,
        popularity=popularity(),
        reload_check_seconds=3600.0,
        **kwargs,  # type: ignore[arg-type]
    )
    service.reload_model()
    return service


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(tmp_path / "models")
    members = {ALICE: CLUSTER_A, BOB: CLUSTER_B}
    publish(registry, make_model("v1", trained_members=members, metrics={"dataset": "ml-latest-small"}))
    return registry


async def test_an_added_movie_is_stored_searchable_and_rateable_at_once(storage, registry):
    service = make_service(storage, registry, dataset="ml-latest-small")
    assert sorted(service.genres()) == ["Action", "Comedy", "Drama", "Romance", "Thriller"]
    movie = await service.add_movie("Heat Wave", 2025, "action, Thriller", "tt7654321", added_by=9)
    assert movie.movie_id == ADDED_ID_BASE and movie.genres == ("Action", "Thriller")
    assert [a.movie for a in await storage.added_movies()] == [movie]
    assert service.search("heat wave", 5)[0] == movie and service.resolve("Heat Wave (2025)") == movie
    assert service.added_movies() == [movie]
    result = await service.rate(ALICE, movie.movie_id, 4.5)
    assert result.movie == movie and (await storage.user_ratings(ALICE))[0].movie_id == movie.movie_id


async def test_bad_or_duplicate_details_change_nothing(storage, registry):
    service = make_service(storage, registry)
    size = len(service.catalog)
    for call in (
        service.add_movie("X", 2025, "Western", added_by=9),
        service.add_movie("X", 1869, "Drama", added_by=9),
        service.add_movie("X", 2025, "Drama", "t123", added_by=9),
        service.add_movie("  ", 2025, "Drama", added_by=9),
    ):
        with pytest.raises(InvalidMovieDetails):
            await call
    with pytest.raises(DuplicateMovie):
        await service.add_movie("action 3", 1993, "Drama", added_by=9)  # "Action 3 (1993)" is movie 3
    assert len(service.catalog) == size and await storage.added_movies() == []


async def test_until_a_retrain_an_added_movie_is_served_by_its_genres_and_year(storage, registry):
    service = make_service(storage, registry, dataset="ml-latest-small")
    movie = await service.add_movie("New Action", 2024, "Action, Thriller", added_by=9)
    old = time.time() - 3600
    for m in CLUSTER_A[:8]:  # Alice loves action: only two learned action movies are left for her
        await storage.upsert_rating(ALICE, m, 5.0, None, rated_at=old)
    for m in CLUSTER_B[:3]:
        await storage.upsert_rating(BOB, m, 5.0, None, rated_at=old)

    prediction = await service.predict(ALICE, movie.movie_id)
    assert prediction.path is ServingPath.CONTENT and prediction.content_reason is ContentReason.ADDED_MOVIE
    dataset_only = await service.predict(ALICE, 40)  # in the catalogue, never learned: not "added"
    assert dataset_only.content_reason is ContentReason.NOT_LEARNED
    learned = await service.predict(ALICE, CLUSTER_A[9])
    assert learned.path is ServingPath.TRAINED and learned.content_reason is None

    alice = await service.recommend(ALICE)
    new = [p for p in alice.picks if p.reason is PickReason.NEW_MOVIE]
    assert [p.movie for p in new] == [movie] and len(alice.picks) == 5
    assert new[0].stars >= min(p.stars for p in alice.picks)
    bob = await service.recommend(BOB)  # a drama lover: the action movie does not fit his taste
    assert movie.movie_id not in {p.movie.movie_id for p in bob.picks}
    await service.rate(ALICE, movie.movie_id, 4.0)
    assert movie.movie_id not in {p.movie.movie_id for p in (await service.recommend(ALICE)).picks}


async def test_edit_and_remove_touch_only_added_movies(storage, registry):
    service = make_service(storage, registry)
    movie = await service.add_movie("Typo Movei", 2025, "Drama", added_by=9)
    fixed = await service.edit_movie(movie.movie_id, title="Typo Movie", edited_by=9)
    assert fixed.title == "Typo Movie" and fixed.genres == ("Drama",)
    assert service.resolve("Typo Movie") == fixed and await storage.get_movie(movie.movie_id) == fixed
    for call in (
        service.edit_movie(1, title="Hijacked", edited_by=9),
        service.remove_movie(1, removed_by=9),
    ):
        with pytest.raises(NotAddedMovie):
            await call
    assert (await storage.get_movie(1)).title == "Action 1"
    await service.rate(ALICE, movie.movie_id, 3.0)
    assert await service.remove_movie(movie.movie_id, removed_by=9) == 1
    assert service.search("typo movie", 5) == [] and service.added_movies() == []
    assert [r.title for r in await storage.set_aside_ratings(ALICE)] == ["Typo Movie"]
    assert await service.ratings(ALICE) == []


async def test_a_model_trained_on_another_dataset_is_not_served(storage, tmp_path):
    registry = Registry(tmp_path / "other")
    publish(registry, make_model("v-old", trained_members={ALICE: CLUSTER_A}, metrics={"dataset": "ml-100k"}))
    await storage.upsert_rating(ALICE, 1, 5.0, None)
    service = make_service(storage, registry, dataset="ml-latest-small")
    assert service.model_version is None
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.POPULARITY and recs.popularity_reason is PopularityReason.NO_MODEL
    stats = await service.stats()
    assert "trained on ml-100k" in stats.model_status and "ml-latest-small" in stats.model_status
    assert "until a model is trained" in stats.model_status
    # the same model for a catalogue of its own dataset is served
    assert make_service(storage, registry, dataset="ml-100k").model_version == "v-old"
