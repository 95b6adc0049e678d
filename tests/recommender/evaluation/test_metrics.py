"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from recommender.evaluation import metrics


def test_rmse_and_mae_by_hand() -> None:
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_precision_recall_ndcg_by_hand() -> None:
    rec = [10, 20, 30, 40, 50]
    relevant = {20, 50, 99}
    assert metrics.precision_at_k(rec, relevant) == pytest.approx(2 / 5)
    assert metrics.recall_at_k(rec, relevant) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)  # hits at ranks 2 and 5
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant: ideal hits at ranks 1..3
    assert metrics.ndcg_at_k(rec, relevant) == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k([20, 50, 99], relevant) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(rec, set()) == 0.0 and metrics.recall_at_k(rec, set()) == 0.0
    assert metrics.precision_at_k([20], relevant) == pytest.approx(1 / 5)  # short lists still divide by k


def test_catalog_coverage() -> None:
    assert metrics.catalog_coverage([[1, 2], [2, 3], []], 10) == pytest.approx(0.3)
