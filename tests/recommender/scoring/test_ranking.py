"""RankingModel: histories, the blended score, the reasons it gives, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.core.errors import NoModel
from recommender.scoring.itemitem import sparse_rows
from recommender.scoring.model import ServingModel
from recommender.scoring.ranking import RANKING_FILE, RankingModel, recency_weights
from tests.recommender.scoring.test_model import make_model


def make_ranker(
    n: int = 6, dim: int = 3, *, seed: int = 0, item: np.ndarray | None = None, **kw
) -> RankingModel:
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n, dtype=np.int64)
    dense = np.zeros((n, n), dtype=np.float32) if item is None else item.astype(np.float32)
    csr = sparse_rows(dense, np.arange(n), n)
    values = dict(
        movie_ids=ids,
        in_all=rng.normal(size=(n, dim)).astype(np.float32),
        in_recent=rng.normal(size=(n, dim)).astype(np.float32),
        out=rng.normal(size=(n, dim)).astype(np.float32),
        out_bias=rng.normal(size=n).astype(np.float32),
        ease_indptr=csr[0],
        ease_indices=csr[1],
        ease_data=csr[2],
        tau=2.0,
        sequence_weight=0.5,
        item_weight=0.5,
    )
    values.update(kw)
    return RankingModel(**values)


def test_recency_weights_favour_the_latest_and_sum_to_one():
    w = recency_weights(4, 2.0)
    assert w.sum() == pytest.approx(1.0)
    assert list(np.argsort(w)) == [0, 1, 2, 3]
    assert recency_weights(0, 2.0).size == 0


def test_history_drops_unknown_movies_and_keeps_the_latest_of_a_repeat():
    r = make_ranker()
    h = r.history([101, 999, 103, 101])
    assert r.movie_ids[h.index].tolist() == [103, 101]
    assert h.all_weights.tolist() == pytest.approx([1 / np.sqrt(2)] * 2)
    assert h.recent_weights[1] > h.recent_weights[0]
    assert r.history([999]).empty


def test_sequence_part_is_the_weighted_bag_through_the_output_layer():
    r = make_ranker()
    h = r.history([100, 102])
    user = h.all_weights @ r.in_all[[0, 2]] + h.recent_weights @ r.in_recent[[0, 2]]
    np.testing.assert_allclose(r.sequence_scores(h), r.out @ user + r.out_bias, rtol=1e-5)


def test_item_part_adds_the_rated_movies_rows():
    w = np.zeros((6, 6))
    w[0, 4], w[2, 4], w[2, 5] = 1.0, 2.0, 0.5
    r = make_ranker(item=w)
    scores = r.item_scores(r.history([100, 102]))
    assert scores.tolist() == pytest.approx([0, 0, 0, 0, 3.0, 0.5])


def test_scores_blend_the_standardised_parts():
    w = np.zeros((6, 6))
    w[0, 3] = 1.0
    r = make_ranker(item=w, sequence_weight=0.25, item_weight=0.75)
    h = r.history([100, 101])
    seq, item = r.sequence_scores(h), r.item_scores(h)
    expected = 0.25 * (seq - seq.mean()) / seq.std() + 0.75 * (item - item.mean()) / item.std()
    np.testing.assert_allclose(r.scores(h), expected, rtol=1e-4, atol=1e-5)
    only_items = make_ranker(item=w, sequence_weight=0.0, item_weight=1.0)
    assert int(np.argmax(only_items.scores(only_items.history([100, 101])))) == 3


def test_because_names_the_rated_movie_that_pushed_a_pick_up():
    w = np.zeros((6, 6))
    w[1, 5] = 5.0  # rating movie 101 is what makes 105 a pick
    w[2, 4] = 5.0
    r = make_ranker(item=w, sequence_weight=0.0, item_weight=1.0)
    h = r.history([100, 101, 102])
    why = r.because(h, np.array([5, 4]), r.scored(h)[1])
    assert why[0][0][0] == 101 and why[1][0][0] == 102
    assert all(0 < share <= 1 for reasons in why for _, share in reasons)
    assert r.because(r.history([]), np.array([5]), (1.0, 1.0)) == [[]]


def test_save_load_round_trip_and_serving_model_carries_it(tmp_path):
    model = make_model()
    model.ranker = make_ranker(n=30, seed=3, metrics={"blend": 4.0})
    model.save(tmp_path)
    assert (tmp_path / RANKING_FILE).is_file()
    back = ServingModel.load(tmp_path)
    assert back.ranker is not None
    h = back.ranker.history([101, 105])
    np.testing.assert_array_equal(
        back.ranker.scores(h), model.ranker.scores(model.ranker.history([101, 105]))
    )
    assert back.ranker.metrics == {"blend": 4.0}


def test_a_version_without_ranking_loads_without_one(tmp_path):
    make_model().save(tmp_path)
    assert ServingModel.load(tmp_path).ranker is None


def test_mismatched_ranking_arrays_make_the_version_unservable(tmp_path):
    model = make_model()
    ranker = make_ranker(n=30)
    ranker.out_bias = ranker.out_bias[:-1]
    model.ranker = ranker
    model.save(tmp_path)
    with pytest.raises(NoModel):
        ServingModel.load(tmp_path)


def test_reduced_keeps_the_scores_of_a_low_rank_output_table_and_narrows_the_matvec():
    rng = np.random.default_rng(3)
    out = (rng.normal(size=(8, 2)) @ rng.normal(size=(2, 5))).astype(np.float32)  # rank 2 in 5 dims
    item = np.abs(rng.normal(size=(8, 8))).astype(np.float32)
    r = make_ranker(8, 5, out=out, item=item)
    small = r.reduced(2)
    assert small.out.shape == (8, 2) and small.in_all.shape == (8, 2) and small.in_recent.shape == (8, 2)
    for seen in ([100, 103], [101, 102, 105, 107]):
        np.testing.assert_allclose(small.scores(small.history(seen)), r.scores(r.history(seen)), atol=1e-4)
    assert r.reduced(5) is r and r.reduced(9) is r
    one = r.reduced(1)  # a real loss of rank: not the same scores, but the same shape of model
    assert one.out.shape == (8, 1) and not np.allclose(
        one.scores(one.history([100])), r.scores(r.history([100]))
    )
