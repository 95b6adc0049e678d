"""RecommenderService: serving paths and their words, rating validation, fallbacks, hot reload, no TF."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from bot.ui import words
from recommender.core.config import Settings
from recommender.core.errors import InvalidStars, RetrainInProgress, UnknownMovie
from recommender.core.types import DATASETS
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.pipeline.worker import TrainingWorker
from recommender.serving.catalog import Catalog
from recommender.serving.contract import PickReason, PopularityReason, ServingPath
from recommender.serving.service import RecommenderService

from .service_fakes import (
    CLUSTER_A,
    CLUSTER_B,
    CONTENT_ONLY,
    FakeWorker,
    make_model,
    movies,
    popularity,
    publish,
    slow_loader,
)

ROOT = Path(__file__).resolve().parents[3]
HALF = DATASETS["ml-latest-small"].scale
WHOLE = DATASETS["ml-100k"].scale
ALICE, BOB = 111_111_111_111_111_111, 222_222_222_222_222_222


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


async def open_storage(path: Path) -> Storage:
    storage = await Storage(path).open()
    await storage.load_catalog("ml-latest-small", movies(), popularity())
    return storage


@pytest.fixture
async def storage(tmp_path: Path):
    storage = await open_storage(tmp_path / "bot.sqlite3")
    yield storage
    await storage.close()


def make_service(
    storage, registry, *, scale=HALF, worker=None, reload_check_seconds=3600.0
) -> RecommenderService:
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[2] for m, p in popularity().items()}),
        registry,
        scale,
        popularity=popularity(),
        worker=worker,
        reload_check_seconds=reload_check_seconds,
    )
    service.reload_model()
    return service


@pytest.fixture
def service(storage, registry) -> RecommenderService:
    publish(registry, make_model("v1", trained_members={ALICE: CLUSTER_A}))
    return make_service(storage, registry)


# --------------------------------------------------------------------------------- serving paths


async def test_trained_member_uses_learned_embedding(service, storage):
    old = time.time() - 3600  # rated before the model was trained
    for movie_id in CLUSTER_A[:3]:
        await storage.upsert_rating(ALICE, movie_id, 5.0, 1, rated_at=old)
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.TRAINED
    assert words.explain_recommendations(recs) == "based on your 3 ratings"
    assert (recs.n_ratings, recs.popularity_reason) == (3, None)
    assert recs.model_version == "v1"
    # the learned vector points at cluster A, so the unrated cluster-A movies come first
    assert {p.movie.movie_id for p in recs.picks[:3]} <= set(CLUSTER_A[3:])


async def test_rating_after_training_switches_to_fold_in(service, storage):
    old = time.time() - 3600
    await storage.upsert_rating(ALICE, CLUSTER_A[0], 5.0, 1, rated_at=old)
    await service.rate(ALICE, CLUSTER_B[0], 5.0, 1)  # newer than the model
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.FOLD_IN
    assert words.explain_recommendations(recs) == "based on your 2 ratings (learned just now)"


async def test_rating_made_while_training_ran_is_folded_in(storage, registry):
    now = time.time()
    # train.py records when the run started; member ratings are read after that moment
    model = make_model("v1", trained_members={ALICE: CLUSTER_A}, trained_at=now - 60)
    model.metrics = {"val_rmse": 0.9, "trained_at": now - 600}
    publish(registry, model)
    service = make_service(storage, registry)
    await storage.upsert_rating(ALICE, CLUSTER_A[0], 5.0, 1, rated_at=now - 900)
    assert (await service.recommend(ALICE)).path is ServingPath.TRAINED
    await storage.upsert_rating(ALICE, CLUSTER_A[1], 5.0, 1, rated_at=now - 300)  # during the run
    assert (await service.recommend(ALICE)).path is ServingPath.FOLD_IN
    assert (await service.stats()).ratings_since_training == 1


async def test_new_member_is_folded_in_from_their_ratings(service):
    for movie_id in CLUSTER_B[:4]:
        await service.rate(BOB, movie_id, 5.0, 1)
    for movie_id in CLUSTER_A[:4]:
        await service.rate(BOB, movie_id, 1.0, 1)
    recs = await service.recommend(BOB, k=3)
    assert recs.path is ServingPath.FOLD_IN
    assert words.explain_recommendations(recs) == "based on your 8 ratings (learned just now)"
    # the fold-in learned taste: the remaining cluster-B movies, not the popular cluster-A ones
    assert {p.movie.movie_id for p in recs.picks} <= set(CLUSTER_B[4:])
    assert all("I think you'd give it" in words.pick_reason(p) for p in recs.picks)
    assert recs.picks[0].stars > (await service.predict(BOB, CLUSTER_A[5])).stars


async def test_changed_rating_changes_the_folded_in_taste(service):
    for movie_id in CLUSTER_B[:3]:
        await service.rate(BOB, movie_id, 5.0, 1)
    liked = (await service.predict(BOB, CLUSTER_B[5])).stars
    for movie_id in CLUSTER_B[:3]:  # same movies, same count: only the stars and times change
        await service.rate(BOB, movie_id, 1.0, 1)
    disliked = (await service.predict(BOB, CLUSTER_B[5])).stars
    assert disliked < liked - 1.0


async def test_member_without_ratings_gets_popular_picks(service):
    recs = await service.recommend(BOB, k=4)
    assert recs.path is ServingPath.POPULARITY
    assert words.explain_recommendations(recs) == "popular picks: rate a few movies to personalise"
    assert recs.popularity_reason is PopularityReason.NO_RATINGS
    expected = sorted(popularity(), key=lambda m: -popularity()[m][2])[:4]
    assert [p.movie.movie_id for p in recs.picks] == expected
    assert "on average from" in words.pick_reason(recs.picks[0])
    assert recs.picks[0].reason is PickReason.POPULAR
    assert recs.picks[0].ratings == popularity()[recs.picks[0].movie.movie_id][0]


async def test_no_model_means_popular_picks_said_plainly(storage, registry):
    service = make_service(storage, registry)  # nothing published
    await service.rate(ALICE, CLUSTER_B[0], 4.0, 1)
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.POPULARITY
    assert "isn't available" in words.explain_recommendations(recs)
    assert recs.popularity_reason is PopularityReason.NO_MODEL
    assert recs.model_version is None
    assert CLUSTER_B[0] not in {p.movie.movie_id for p in recs.picks}
    stats = await service.stats()
    assert stats.model_status == "unavailable: no model has been published yet"


async def test_movie_without_embedding_is_predicted_from_content(service):
    await service.rate(BOB, CLUSTER_A[0], 5.0, 1)
    prediction = await service.predict(BOB, CONTENT_ONLY)
    assert prediction.path is ServingPath.CONTENT
    assert "matched by genres and year" in words.explain_prediction(prediction)
    model = service.model
    user = model.fold_in([CLUSTER_A[0]], [5.0])
    movie = next(m for m in movies() if m.movie_id == CONTENT_ONLY)
    assert prediction.stars == pytest.approx(model.predict_content(user, movie.genres, movie.year))


async def test_predict_already_rated_movie_answers_and_says_so(service):
    await service.rate(BOB, CLUSTER_A[0], 4.5, 1)
    prediction = await service.predict(BOB, CLUSTER_A[0])
    assert prediction.path is ServingPath.FOLD_IN
    assert prediction.rated == 4.5
    assert words.explain_prediction(prediction).endswith("you rated it 4.5★")
    assert HALF.minimum <= prediction.stars <= HALF.maximum


async def test_predict_without_ratings_uses_popularity(service):
    prediction = await service.predict(BOB, CLUSTER_A[0])
    assert prediction.path is ServingPath.POPULARITY
    assert prediction.stars == pytest.approx(popularity()[CLUSTER_A[0]][2])
    count = popularity()[CLUSTER_A[0]][0]
    assert words.explain_prediction(prediction) == (
        f"{count} ratings average 4.5★; that's the crowd's view: rate a few movies to personalise"
    )
    unrated = await service.predict(BOB, CONTENT_ONLY)  # not in the dataset's popularity either
    assert unrated.path is ServingPath.POPULARITY
    assert unrated.stars == pytest.approx(service.model.global_mean)
    assert words.explain_prediction(unrated).startswith("nobody has rated it yet")


@pytest.mark.parametrize("who", ["trained", "fold_in", "popularity"])
async def test_already_rated_movies_are_never_recommended(service, storage, who):
    popular = sorted(popularity(), key=lambda m: -popularity()[m][2])
    user = ALICE if who == "trained" else BOB
    if who == "trained":
        targets = CLUSTER_A[:6]  # exactly what the trained vector would rank first
        for movie_id in targets:
            await storage.upsert_rating(ALICE, movie_id, 4.0, None, rated_at=time.time() - 3600)
    elif who == "fold_in":
        targets = CLUSTER_A[:6]
        for movie_id in targets:
            await service.rate(BOB, movie_id, 5.0, None)
    else:
        targets = []
    recs = await service.recommend(user, k=10)
    assert recs.path.value == who
    assert len(recs.picks) == 10
    assert not {p.movie.movie_id for p in recs.picks} & set(targets)
    if who == "popularity":
        assert recs.picks[0].movie.movie_id == popular[0]


async def test_similar_by_item_factors_and_genre_fallback(service):
    picks = await service.similar(CLUSTER_A[0], k=3)
    assert {p.movie.movie_id for p in picks} <= set(CLUSTER_A[1:])
    assert "similarity" in words.pick_reason(picks[0])
    assert picks[0].reason is PickReason.SIMILAR and 0 < picks[0].similarity <= 1
    fallback = await service.similar(CONTENT_ONLY, k=3)  # no embedding: popular movies sharing its genres
    content_genres = set(next(m for m in movies() if m.movie_id == CONTENT_ONLY).genres)
    assert fallback and all(content_genres & set(p.movie.genres) for p in fallback)
    with pytest.raises(UnknownMovie):
        await service.similar(999_999)


async def test_similar_without_a_model_uses_genres(storage, registry):
    service = make_service(storage, registry)  # nothing published
    picks = await service.similar(CLUSTER_B[0], k=4)
    assert [p.movie.movie_id for p in picks] == CLUSTER_B[1:5]  # same two genres, most popular first
    assert words.pick_reason(picks[0]) == "popular and shares 2 genres with it"
    assert (picks[0].reason, picks[0].shared_genres) == (PickReason.SHARED_GENRES, 2)


# ----------------------------------------------------------------------------------- ratings


@pytest.mark.parametrize("stars", [0, 5.5, 2.25, math.nan, math.inf, -1, True, "4"])
async def test_bad_stars_are_rejected_and_nothing_is_stored(service, storage, stars):
    with pytest.raises(InvalidStars):
        await service.rate(ALICE, CLUSTER_A[0], stars, 1)
    assert await storage.user_ratings(ALICE) == []


async def test_stars_follow_the_dataset_scale(storage, registry):
    whole = make_service(storage, registry, scale=WHOLE)
    with pytest.raises(InvalidStars, match="whole stars"):
        await whole.rate(ALICE, CLUSTER_A[0], 3.5, 1)
    assert (await whole.rate(ALICE, CLUSTER_A[0], 3, 1)).stars == 3.0
    assert (await whole.rate(BOB, CLUSTER_A[0], 1, 1)).stars == 1.0
    half = make_service(storage, registry, scale=HALF)
    assert (await half.rate(ALICE, CLUSTER_A[0], 0.5, 1)).stars == 0.5
    with pytest.raises(InvalidStars, match="half stars"):
        await half.rate(ALICE, CLUSTER_A[0], 0.25, 1)


async def test_rate_returns_previous_stars_and_count(service):
    first = await service.rate(ALICE, CLUSTER_A[0], 3.0, 1)
    assert (first.previous, first.n_ratings) == (None, 1)
    second = await service.rate(ALICE, CLUSTER_A[0], 4.5, 2)
    assert (second.stars, second.previous, second.n_ratings) == (4.5, 3.0, 1)
    third = await service.rate(ALICE, CLUSTER_A[1], 2.0, 2)
    assert third.n_ratings == 2 and third.movie.movie_id == CLUSTER_A[1]


async def test_search_and_resolve_use_the_catalog(service):
    assert service.resolve("Brand New Drama (2024)").movie_id == CONTENT_ONLY
    assert CONTENT_ONLY in {m.movie_id for m in service.search("brand new drma", 25)}
    with pytest.raises(UnknownMovie):
        service.resolve("no such film at all")


@pytest.mark.parametrize("movie_id", [424_242, -1, True, 1.0, "1", None])
async def test_unknown_movie(service, storage, movie_id):
    for call in (service.rate(ALICE, movie_id, 4.0, 1), service.predict(ALICE, movie_id)):
        with pytest.raises(UnknownMovie):
            await call
    assert await storage.user_ratings(ALICE) == []
    assert (await service.rate(ALICE, np.int64(CLUSTER_A[0]), 4.0, 1)).movie.movie_id == CLUSTER_A[0]


async def test_forget_deletes_only_that_member(service, storage):
    for movie_id in CLUSTER_A[:3]:
        await service.rate(ALICE, movie_id, 4.0, 1)
        await service.rate(BOB, movie_id, 2.0, 1)
    assert await service.forget(ALICE) == 3
    assert await service.ratings(ALICE) == []
    assert [r.stars for _, r in await service.ratings(BOB)] == [2.0, 2.0, 2.0]
    assert (await service.recommend(ALICE)).path is ServingPath.POPULARITY


# --------------------------------------------------------------------------- fallback and reload


async def test_corrupt_model_falls_back_to_popularity(storage, registry):
    publish(registry, make_model("v1"))
    folder = registry.path("v1")
    (folder / "serving.npz").write_bytes(b"not an npz")
    service = make_service(storage, registry)
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.POPULARITY and recs.model_version is None
    stats = await service.stats()
    assert stats.model_status.startswith("unavailable: ")
    assert "corrupt" in stats.model_status
    assert stats.model_version is None


async def test_missing_version_folder_falls_back_to_popularity(storage, registry, caplog):
    publish(registry, make_model("v1"))
    import shutil

    shutil.rmtree(registry.path("v1"))
    service = make_service(storage, registry)
    assert (await service.stats()).model_status.startswith("unavailable: ")
    assert "missing" in (await service.stats()).model_status
    assert any("popular picks" in r.getMessage() for r in caplog.records)
    assert (await service.predict(ALICE, CLUSTER_A[0])).path is ServingPath.POPULARITY


async def test_broken_new_version_keeps_the_working_one(service, registry):
    publish(registry, make_model("v2"))
    (registry.path("v2") / "serving.npz").write_bytes(b"garbage")
    assert service.reload_model() == "v1"
    stats = await service.stats()
    assert stats.model_version == "v1"
    assert stats.model_status.startswith("ok; version v2 unavailable")


async def test_hot_reload_under_concurrent_requests(storage, registry):
    publish(registry, make_model("v1"))
    # the service's registry takes 0.2 s per load, like big arrays, so requests overlap the reload
    service = make_service(
        storage, Registry(registry.root, loader=slow_loader(0.2)), reload_check_seconds=0.0
    )
    for movie_id in CLUSTER_B[:3]:
        await service.rate(BOB, movie_id, 5.0, 1)
    assert service.model_version == "v1"
    seen: set[str | None] = set()
    stop = asyncio.Event()

    async def client(user: int) -> int:
        n = 0
        while not stop.is_set():
            recs = await service.recommend(user)
            assert len(recs.picks) == 5
            seen.add(recs.model_version)
            await service.predict(user, CLUSTER_A[1])
            n += 1
            await asyncio.sleep(0)
        return n

    tasks = [asyncio.create_task(client(u)) for u in (ALICE, BOB, ALICE + 1, BOB + 1)]
    await asyncio.sleep(0.05)
    await asyncio.to_thread(publish, registry, make_model("v2"))  # slow load, off the loop
    deadline = time.monotonic() + 10
    while service.model_version != "v2" and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a plain attribute
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    stop.set()
    counts = await asyncio.gather(*tasks)  # any failed request re-raises here
    assert service.model_version == "v2"
    assert seen == {"v1", "v2"}
    assert min(counts) > 5  # requests kept being answered while v2 loaded


async def test_reload_check_is_rate_limited(storage, registry):
    publish(registry, make_model("v1"))
    service = make_service(storage, registry, reload_check_seconds=3600.0)
    publish(registry, make_model("v2"))
    await service.recommend(ALICE)
    assert service.model_version == "v1"  # not checked again within the interval
    assert service.reload_model() == "v2"  # an explicit reload picks it up at once


# ------------------------------------------------------------------------------- retrain, stats


async def test_retrain_one_at_a_time_records_and_reloads(storage, registry):
    publish(registry, make_model("v1"))
    worker = FakeWorker(registry, make_model("v2", family="mf"))
    service = make_service(storage, registry, worker=worker)
    events: list[dict] = []

    async def progress(event: dict) -> None:
        events.append(event)

    first = asyncio.create_task(service.retrain(progress))
    await worker.started.wait()
    assert (await service.stats()).retrain_running
    with pytest.raises(RetrainInProgress):
        await service.retrain()
    worker.release.set()
    done = await first
    assert done.kind == "done" and done.version == "v2"
    assert [e.kind for e in events] == ["start", "epoch", "done"]
    assert service.model_version == "v2"
    recorded = await storage.model_versions()
    assert recorded == [
        {
            "version": "v2",
            "family": "mf",
            "metrics": {"val_rmse": 0.9},
            "trained_at": recorded[0]["trained_at"],
            "published": True,
        }
    ]
    assert recorded[0]["trained_at"] == pytest.approx(worker.trained_at)
    assert not (await service.stats()).retrain_running


async def test_stats(service, storage):
    await storage.upsert_rating(ALICE, CLUSTER_A[0], 4.0, 1, rated_at=time.time() - 3600)
    await service.rate(BOB, CLUSTER_A[1], 4.0, 1)
    await service.rate(BOB, CLUSTER_A[2], 3.0, 1)
    stats = await service.stats()
    assert (stats.ratings, stats.members, stats.catalog_size) == (3, 2, len(movies()))
    assert (stats.model_version, stats.model_family, stats.model_status) == ("v1", "mf", "ok")
    assert stats.ratings_since_training == 2
    assert stats.model_metrics == {"val_rmse": 0.9}
    assert stats.model_trained_at == pytest.approx(service.model.trained_at)


# --------------------------------------------------------------------------------- no TensorFlow


def test_serving_does_not_import_tensorflow(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from recommender.persistence.registry import Registry
        from recommender.serving.service import RecommenderService
        from recommender.core.types import DATASETS
        from recommender.persistence.storage import Storage
        from recommender.serving.catalog import Catalog
        from service_fakes import make_model, movies, popularity, publish, CLUSTER_A

        async def main():
            registry = Registry({str(tmp_path / "models")!r})
            publish(registry, make_model("v1"))
            storage = await Storage({str(tmp_path / "bot.sqlite3")!r}).open()
            await storage.load_catalog("ml-latest-small", movies(), popularity())
            service = RecommenderService(storage, Catalog(movies()), registry,
                                         DATASETS["ml-latest-small"].scale, popularity=popularity())
            assert service.reload_model() == "v1", (await service.stats()).model_status
            await service.rate(7, CLUSTER_A[0], 5.0, 1)
            recs = await service.recommend(7)
            pred = await service.predict(7, CLUSTER_A[1])
            sim = await service.similar(CLUSTER_A[1])
            await storage.close()
            return [recs.path.value, pred.path.value, len(sim)]

        out = asyncio.run(main())
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print(json.dumps({{"out": out, "heavy": heavy}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["out"] == ["fold_in", "fold_in", 5]
    assert result["heavy"] == []


def test_fake_model_is_a_real_mf(tmp_path: Path):
    """Guard for the fixtures: the synthetic model ranks its own clusters as the tests assume."""
    model = make_model("v", trained_members={ALICE: CLUSTER_A})
    user = model.user_vector(f"member:{ALICE}")
    assert user is not None
    top = [m for m, _ in model.recommend(user, 5, exclude=())]
    assert set(top) <= set(CLUSTER_A)
    assert np.isfinite(model.predict(user, np.asarray(CLUSTER_B))).all()


async def test_retrain_through_the_real_worker_process(tmp_path: Path, storage):
    """The service drives recommender.pipeline.worker's child process; a stand-in train.py publishes v2."""
    settings = Settings(data_dir=tmp_path / "data")
    publish(Registry(settings.models_dir), make_model("v1"))
    script = tmp_path / "fake_train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, os, sys, time
            from pathlib import Path
            sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]
            from recommender.persistence.registry import Registry
            from service_fakes import make_model, publish
            def emit(**event):
                print(json.dumps(event), flush=True)

            emit(event="start", family="mf")
            emit(event="epoch", epoch=1, epochs=1, loss=1.0, val_loss=1.0)
            publish(Registry(Path(os.environ["BOT_DATA_DIR"]) / "models"), make_model("v2"))
            emit(event="done", ok=True, published=True, version="v2", family="mf",
                 trained_at=time.time() - 60,
                 reason="test", metrics={{"val_rmse": 0.8}}, plot=None)
            """
        )
    )
    worker = TrainingWorker(settings, script=script, threads=1, nice=0)
    service = make_service(storage, Registry(settings.models_dir), worker=worker)
    assert service.model_version == "v1"
    events: list[str] = []

    async def progress(event: dict) -> None:
        events.append(event.kind)

    done = await service.retrain(progress)
    assert done.published and done.version == "v2", done
    assert events == ["start", "epoch", "done"]
    assert service.model_version == "v2"
    assert (await storage.model_versions())[0]["version"] == "v2"


async def test_ratings_cache_never_serves_a_stale_list(service, storage, monkeypatch):
    """Ratings are kept in memory between requests, but a rating always shows up at once, even when
    it lands while another request is still reading the old list from the database."""
    await service.rate(BOB, CLUSTER_B[0], 5.0, 1)
    first = await service.recommend(BOB, k=3)  # reads and caches BOB's one rating
    assert first.path is ServingPath.FOLD_IN

    real_read = storage.user_ratings
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_read(user_id):
        rows = await real_read(user_id)  # the list as it was before the write below
        reading.set()
        await release.wait()
        return rows

    await service.rate(BOB, CLUSTER_B[1], 5.0, 1)  # drops the cache, so the next read hits storage
    monkeypatch.setattr(storage, "user_ratings", slow_read)
    in_flight = asyncio.create_task(service.recommend(BOB, k=3))
    await reading.wait()
    monkeypatch.setattr(storage, "user_ratings", real_read)
    await service.rate(BOB, CLUSTER_B[2], 5.0, 1)  # lands while the old list is being read
    release.set()
    await in_flight

    rated = {r.movie_id for _, r in await service.ratings(BOB)}
    assert rated == set(CLUSTER_B[:3])
    recs = await service.recommend(BOB, k=5)
    assert not {p.movie.movie_id for p in recs.picks} & rated
    assert words.explain_recommendations(recs) == "based on your 3 ratings (learned just now)"
    assert (await service.forget(BOB)) == 3
    assert await service.ratings(BOB) == []


async def test_repeat_requests_reuse_the_ratings_list_until_it_changes(service, storage, monkeypatch):
    for movie_id in CLUSTER_B[:3]:
        await service.rate(BOB, movie_id, 5.0, 1)
    reads = 0
    real_read = storage.user_ratings

    async def counting_read(user_id):
        nonlocal reads
        reads += 1
        return await real_read(user_id)

    monkeypatch.setattr(storage, "user_ratings", counting_read)
    for _ in range(3):
        await service.recommend(BOB)
        await service.predict(BOB, CLUSTER_A[0])
    assert reads == 1  # read once, then checked against the database's fingerprint only
    await storage.upsert_rating(BOB, CLUSTER_B[3], 4.0, 1)  # a write that bypasses the service
    recs = await service.recommend(BOB)
    assert reads == 2 and CLUSTER_B[3] not in {p.movie.movie_id for p in recs.picks}
    assert words.explain_recommendations(recs) == "based on your 4 ratings (learned just now)"
