"""The shared math: the score formula in every shape, the ridge solve, top-k's deterministic order."""

from __future__ import annotations

import numpy as np

from recommender.scoring.linalg import ridge, score, top_k


def test_score_one_user_a_grid_and_pairs_agree() -> None:
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    bu, bi = rng.normal(size=4), rng.normal(size=6)
    grid = score(3.5, bu, bi, P, Q)
    assert grid.shape == (4, 6)
    for u in range(4):
        np.testing.assert_allclose(score(3.5, bu[u], bi, P[u], Q), grid[u])
        for i in range(6):
            assert np.isclose(grid[u, i], 3.5 + bu[u] + bi[i] + P[u] @ Q[i])
    users, items = np.array([0, 3, 3]), np.array([5, 0, 2])
    np.testing.assert_allclose(
        score(3.5, bu[users], bi[items], P[users], Q[items], paired=True), grid[users, items]
    )
    assert float(score(3.5, 0.1, 0.2, P[0], Q[0])) == 3.5 + 0.1 + 0.2 + float(P[0] @ Q[0])


def test_ridge_matches_the_normal_equations_with_a_per_coefficient_penalty() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    penalty = np.array([0.5, 1.0, 2.0])
    expected = np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)
    np.testing.assert_allclose(ridge(x, y, penalty), expected)
    np.testing.assert_allclose(
        ridge(x, y[:, 0], 0.3), np.linalg.solve(x.T @ x + 0.3 * np.eye(3), x.T @ y[:, 0])
    )


def test_top_k_orders_by_score_then_id_and_skips_blocked() -> None:
    ids = np.array([50, 10, 40, 20, 30])
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 2.0])
    assert ids[top_k(scores, ids, 3)].tolist() == [10, 40, 30]
    assert ids[top_k(scores, ids, 10)].tolist() == [10, 40, 30, 50]  # the blocked one never comes back
    assert top_k(scores, ids, 0).size == 0 and top_k(np.full(3, -np.inf), ids[:3], 2).size == 0
    assert ids[top_k(np.array([1.0, np.nan, 0.5, 0.7, 0.2]), ids, 2)].tolist() == [50, 20]


def test_top_k_breaks_ties_at_the_cut_off_by_id_whatever_the_partition_does() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        ids = rng.permutation(200) + 1
        scores = rng.integers(0, 4, 200).astype(float)  # many ties
        k = int(rng.integers(1, 30))
        expected = np.lexsort((ids, -scores))[:k]
        assert top_k(scores, ids, k).tolist() == expected.tolist()


def test_top_k_matches_a_full_sort_with_blocked_nan_and_infinite_scores() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        ids = rng.permutation(n) + 1
        scores = rng.integers(0, 5, n).astype(np.float32)
        odd = rng.random(n)
        scores[odd < 0.15] = -np.inf
        scores[(odd >= 0.15) & (odd < 0.2)] = np.nan
        scores[(odd >= 0.2) & (odd < 0.23)] = np.inf
        k = int(rng.integers(0, n + 3))
        finite = np.flatnonzero(np.isfinite(scores))
        expected = finite[np.lexsort((ids[finite], -scores[finite]))][:k]
        assert top_k(scores, ids, k).tolist() == expected.tolist()
