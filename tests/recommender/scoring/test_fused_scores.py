"""The served scores, computed fused (moments instead of passes), equal the formula as written."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender.scoring.itemitem import sparse_rows
from recommender.scoring.model import ServingModel
from recommender.scoring.ranking import History, RankingModel
from tests.recommender.scoring.test_model import make_model


def standardise(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return (v - v.mean()) / (v.std() if v.std() > 0 else 1.0)


def written(model: ServingModel, h: History, user: tuple[np.ndarray, float] | None) -> np.ndarray:
    """``scores + star_weight(n) * standardise(rank_scores mapped to the ranker's movies)``, in float64."""
    r = model.ranker
    assert r is not None
    u = h.all_weights.astype(np.float64) @ r.in_all[h.index] + h.recent_weights @ r.in_recent[h.index]
    seq = r.out.astype(np.float64) @ u + r.out_bias
    item = np.bincount(*r._neighbours(h)[1:], minlength=r.size) if h.index.size else np.zeros(r.size)
    out = r.sequence_weight * standardise(seq)
    if item.std() > 0:
        out += r.item_weight * (item - item.mean()) / item.std()
    weight = r.star_weight(int(h.index.size))
    if weight > 0 and user is not None:
        vec, bias = user
        own = model.global_mean + bias + model.item_bias + model._prior + model.item_factors @ vec
        rows = model.movie_index(r.movie_ids)
        out += weight * standardise(np.where(rows >= 0, own[np.maximum(rows, 0)], own.min()))
    return out


def ranker_for(ids: np.ndarray, dim: int = 8, seed: int = 1) -> RankingModel:
    rng = np.random.default_rng(seed)
    n = ids.size
    dense = np.where(rng.random((n, n)) < 0.2, rng.random((n, n)), 0.0).astype(np.float32)
    indptr, indices, data = sparse_rows(dense, np.arange(n), n)
    return RankingModel(
        movie_ids=ids.astype(np.int64),
        in_all=rng.normal(size=(n, dim)).astype(np.float32),
        in_recent=rng.normal(size=(n, dim)).astype(np.float32),
        out=rng.normal(size=(n, dim)).astype(np.float32),
        out_bias=rng.normal(size=n).astype(np.float32) + 3.0,  # an offset the centring must remove
        ease_indptr=indptr,
        ease_indices=indices,
        ease_data=data,
        tau=3.0,
        sequence_weight=0.7,
        item_weight=0.3,
        star_weights=((5, 1.0), (10, 2.0)),
    )


@pytest.mark.parametrize("subset", ["every movie", "a subset, reordered", "a movie it lacks"])
@pytest.mark.parametrize("n_rated", [1, 5, 8, 20])
def test_fused_scores_match_the_formula(subset: str, n_rated: int) -> None:
    model = make_model(n_movies=60, dim=4, seed=2)
    ids = model.movie_ids.copy()
    if subset == "a subset, reordered":
        ids = ids[::-2]
    elif subset == "a movie it lacks":
        ids = np.append(ids[:40], 10_000)
    model.ranker = ranker_for(ids)
    rated = np.random.default_rng(n_rated).choice(ids[ids < 10_000], n_rated, replace=False)
    h = model.ranker.history(rated.tolist())
    user = model.fold_in(rated.tolist(), [4.0] * n_rated)
    got, _ = model.served_scores(h, user)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, written(model, h, user), rtol=1e-4, atol=1e-4)
    want = written(model, h, user)
    assert np.argsort(-got, kind="stable")[:10].tolist() == np.argsort(-want, kind="stable")[:10].tolist()


def test_a_constant_part_is_left_out_as_before() -> None:
    model = make_model(n_movies=20, seed=4)
    ranker = ranker_for(model.movie_ids, seed=5)
    flat = dataclasses.replace(ranker, out=np.zeros_like(ranker.out), out_bias=np.full(20, 2.0, np.float32))
    model.ranker = flat
    h = flat.history(model.movie_ids[:3].tolist())
    got, (a, _b) = model.served_scores(h, None)
    assert a == pytest.approx(0.7)  # a zero spread divides by one, as numpy's std of a constant did
    np.testing.assert_allclose(got, written(model, h, None), rtol=1e-4, atol=1e-4)


def test_rank_scores_are_stars_plus_prior() -> None:
    model = make_model(rank_weight=0.3)
    vec, bias = model.user_vector(model.user_keys[0])
    want = model.global_mean + bias + model.item_bias + model._prior + model.item_factors @ vec
    np.testing.assert_allclose(model.rank_scores((vec, bias)), want, rtol=1e-5, atol=1e-5)
