"""Ranking and rating metrics as plain functions; ``K`` and ``RELEVANT`` define ranking everywhere.

Ranking follows one rule: for each test user, rank every catalogue movie the user did not rate in
the training split, take the top ``K``, and count test ratings >= ``RELEVANT`` as relevant.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

import numpy as np

K = 5
RELEVANT = 4.0


def rmse(predicted: Sequence[float], actual: Sequence[float]) -> float:
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean((p - a) ** 2)))


def mae(predicted: Sequence[float], actual: Sequence[float]) -> float:
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(p - a)))


def precision_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Hits in the top ``k`` over ``k`` (a short list still divides by ``k``)."""
    return sum(1 for m in list(recommended)[:k] if m in relevant) / k


def recall_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Hits in the top ``k`` over the number of relevant movies (0 when there are none)."""
    if not relevant:
        return 0.0
    return sum(1 for m in list(recommended)[:k] if m in relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Binary-relevance NDCG: ``sum 1/log2(rank+1)`` over hits, divided by the ideal list's value."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, m in enumerate(list(recommended)[:k]) if m in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def catalog_coverage(recommendations: Iterable[Sequence[int]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one user's list."""
    seen: set[int] = set()
    for rec in recommendations:
        seen.update(rec)
    return len(seen) / catalog_size if catalog_size else 0.0
