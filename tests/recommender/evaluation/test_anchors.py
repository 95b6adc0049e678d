"""EASE and item-kNN anchors: closed-form weights, knobs chosen on the training split only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation.anchors import EASE, ItemKNN
from recommender.evaluation.splits import leave_last_out
from recommender.scoring.itemitem import ease_weights, gram, knn_weights, rated_matrix, top_per_row


def pairs(n_users: int = 200, seed: int = 0) -> pd.DataFrame:
    """Movies come in pairs (2k, 2k+1): whoever rates one rates the other, later."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for t, k in enumerate(rng.choice(20, size=4, replace=False)):
            rows.append((u, 2 * int(k), 4.0, 100 * t))
            rows.append((u, 2 * int(k) + 1, 5.0, 100 * t + 50 + 1000))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_ease_matches_its_closed_form():
    rng = np.random.default_rng(0)
    x = (rng.random((50, 8)) < 0.3).astype(np.float32)
    b = ease_weights(gram(x), 5.0)
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(8))
    expected = np.eye(8) - p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(b, expected, atol=1e-5)
    assert np.all(np.diag(b) == 0)


def test_knn_keeps_the_strongest_neighbours_only():
    x = rated_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2]), 3, 3)
    w = knn_weights(gram(x), k=1, shrink=0.0)
    assert w[0].tolist() == pytest.approx([0, 1, 0]) and w[2].tolist() == [0, 0, 0]
    assert (top_per_row(np.array([[3.0, -1.0, 2.0]], np.float32), 2) == [[3.0, 0.0, 2.0]]).all()


@pytest.mark.parametrize("anchor", [EASE, ItemKNN])
def test_anchor_ranks_the_partner_movie_first_and_predicts_no_stars(anchor):
    data = pairs()
    split = leave_last_out(data, n_last=1)
    algo = anchor().fit(split.train, pd.DataFrame())
    assert algo.chosen in anchor.candidates and set(algo.validation) == set(anchor.candidates)
    assert algo.predict([1], [0]) is None
    hits = 0
    for user, row in split.test.groupby("user_id"):
        ids, scores = algo.rank_scores(int(user))
        seen = split.train.loc[split.train["user_id"] == user, "movie_id"]
        scores = np.where(np.isin(ids, seen), -np.inf, scores)
        hits += int(ids[np.argmax(scores)] == int(row["movie_id"].iloc[0]))
    # chance is 1 in 33; EASE's grid is sized for MovieLens, coarse for 200 users
    assert hits / split.test["user_id"].nunique() > 0.4
    assert algo.rank_scores(99_999) is None


def test_fit_never_sees_rows_it_is_not_given():
    data = pairs()
    split = leave_last_out(data, n_last=1)
    algo = EASE().fit(split.train, pd.DataFrame())
    assert set(algo.ids.tolist()) <= set(split.train["movie_id"].tolist())
    assert algo.x.sum() == len(split.train)
