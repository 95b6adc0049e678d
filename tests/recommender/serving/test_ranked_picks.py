"""/recommend through the ranking model: order, reasons a member can check, new ratings at once."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from bot.ui import words
from recommender.persistence.registry import Registry
from recommender.scoring.itemitem import sparse_rows
from recommender.scoring.ranking import RankingModel
from recommender.serving.contract import PickReason, ServingPath

from .service_fakes import CLUSTER_A, CLUSTER_B, NEUTRAL, make_model, publish
from .test_service import ALICE, BOB, make_service, open_storage

pytestmark = pytest.mark.asyncio


def pairs_ranker(model_movies: np.ndarray, pairs: dict[int, int]) -> RankingModel:
    """An item-item-only ranker: rating ``a`` makes ``pairs[a]`` the strongest pick."""
    n = model_movies.size
    at = {int(m): i for i, m in enumerate(model_movies.tolist())}
    dense = np.zeros((n, n), dtype=np.float32)
    for a, b in pairs.items():
        dense[at[a], at[b]] = 5.0
    dense += 0.01 * np.random.default_rng(0).random((n, n)).astype(np.float32)
    np.fill_diagonal(dense, 0.0)
    indptr, indices, data = sparse_rows(dense, np.arange(n), n)
    zeros = np.zeros((n, 2), dtype=np.float32)
    return RankingModel(
        model_movies.copy(), zeros, zeros, zeros, zeros[:, 0], indptr, indices, data, 5.0, 0.0, 1.0
    )


@pytest.fixture
async def ranked(tmp_path: Path):
    storage = await open_storage(tmp_path / "bot.sqlite3")
    registry = Registry(tmp_path / "models")
    base = make_model("v1", trained_members={ALICE: CLUSTER_A}, trained_at=time.time() - 3600)
    # Rating an Action movie points at a Drama one: the opposite of what the stars would pick.
    pairs = {CLUSTER_A[0]: CLUSTER_B[0], CLUSTER_A[1]: CLUSTER_B[1], NEUTRAL[0]: NEUTRAL[1]}
    publish(registry, dataclasses.replace(base, ranker=pairs_ranker(base.movie_ids, pairs)))
    service = make_service(storage, registry)
    yield service, storage
    await storage.close()


async def test_picks_follow_the_ranking_model_and_name_their_reason(ranked):
    service, storage = ranked
    await storage.upsert_rating(ALICE, CLUSTER_A[0], 5.0, 1, rated_at=time.time() - 7200)
    await storage.upsert_rating(ALICE, CLUSTER_A[1], 4.5, 1, rated_at=time.time() - 7100)
    recs = await service.recommend(ALICE)
    assert recs.path is ServingPath.TRAINED  # stars from the learned embedding, order from the ranker
    top = [p.movie.movie_id for p in recs.picks[:2]]
    assert set(top) == {CLUSTER_B[0], CLUSTER_B[1]}
    first = recs.picks[0]
    assert first.reason is PickReason.PREDICTED
    assert first.because and first.because[0][0].movie_id in (CLUSTER_A[0], CLUSTER_A[1])
    given = {CLUSTER_A[0]: 5.0, CLUSTER_A[1]: 4.5}[first.because[0][0].movie_id]
    assert first.because[0][1] == given
    assert 0.5 <= first.stars <= 5.0
    text = words.pick_reason(first)
    assert "because you rated" in text and first.because[0][0].title in text
    rated = {CLUSTER_A[0], CLUSTER_A[1]}
    assert not rated & {p.movie.movie_id for p in recs.picks}


async def test_a_new_rating_changes_the_next_picks_without_a_retrain(ranked):
    service, _storage = ranked
    await service.rate(BOB, NEUTRAL[0], 4.0)
    first = await service.recommend(BOB)
    assert first.path is ServingPath.FOLD_IN
    assert first.picks[0].movie.movie_id == NEUTRAL[1]
    await service.rate(BOB, CLUSTER_A[0], 5.0)
    second = await service.recommend(BOB)
    assert {p.movie.movie_id for p in second.picks[:2]} == {NEUTRAL[1], CLUSTER_B[0]}


async def test_hidden_movies_and_filters_still_apply(ranked):
    service, _storage = ranked
    await service.rate(BOB, CLUSTER_A[0], 5.0)
    await service.hide(BOB, CLUSTER_B[0])
    recs = await service.recommend(BOB)
    assert CLUSTER_B[0] not in {p.movie.movie_id for p in recs.picks}


async def test_members_without_ratings_still_get_popular_picks(ranked):
    service, _storage = ranked
    recs = await service.recommend(BOB)
    assert recs.path is ServingPath.POPULARITY
    assert all(p.reason is PickReason.POPULAR and not p.because for p in recs.picks)
