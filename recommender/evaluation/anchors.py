"""Ranking anchors every ranking evaluation reports: EASE and cosine item-kNN.

They rank only (no predicted stars). Their one knob each (EASE's ridge strength, kNN's neighbour
count) is chosen by NDCG@5 on a leave-last-out carved from the *training* ratings, then they are
refitted on all of them; the test split is never looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
import pandas as pd

from recommender.evaluation.metrics import RELEVANT, K, ndcg_at_k
from recommender.evaluation.splits import leave_last_out
from recommender.scoring.itemitem import ease_weights, gram, knn_weights, rated_matrix
from recommender.scoring.linalg import top_k

__all__ = ["EASE", "ItemKNN"]

EASE_LAMBDAS = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
KNN_NEIGHBOURS = (20, 50, 100, 200)
KNN_SHRINK = 10.0


class _ItemItem:
    """Scores ``x_u W`` for a user's binary rated vector ``x_u`` and item-item weights ``W``."""

    candidates: Sequence[float]
    chosen: float | None = None

    def weights(self, g: np.ndarray, knob: float) -> np.ndarray:
        raise NotImplementedError

    def _fit_with(self, ratings: pd.DataFrame, knob: float) -> None:
        self.ids = np.sort(ratings["movie_id"].unique()).astype(np.int64)
        users = np.sort(ratings["user_id"].unique())
        self.user_row = {int(u): i for i, u in enumerate(users.tolist())}
        rows = np.searchsorted(users, ratings["user_id"].to_numpy())
        cols = np.searchsorted(self.ids, ratings["movie_id"].to_numpy())
        self.x = rated_matrix(rows, cols, len(users), len(self.ids))
        self.w = self.weights(gram(self.x), knob)

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Self:
        split = leave_last_out(ratings)
        scored: dict[float, float] = {}
        for knob in self.candidates:
            self._fit_with(split.train, knob)
            scored[knob] = _validation_ndcg(self.rank_scores, split.train, split.test)
        self.validation = scored
        self.chosen = max(self.candidates, key=lambda c: (scored[c], c))
        self._fit_with(ratings, self.chosen)
        return self

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> None:
        return None  # ranks only

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        row = self.user_row.get(int(user_id))
        if row is None:
            return None
        return self.ids, self.x[row] @ self.w


class EASE(_ItemItem):
    """EASE (Steck 2019), ridge strength chosen on validation."""

    candidates = EASE_LAMBDAS

    def weights(self, g: np.ndarray, knob: float) -> np.ndarray:
        return ease_weights(g, knob)


class ItemKNN(_ItemItem):
    """Cosine item-kNN (shrunk), the number of neighbours chosen on validation."""

    candidates = KNN_NEIGHBOURS

    def weights(self, g: np.ndarray, knob: float) -> np.ndarray:
        return knn_weights(g, int(knob), KNN_SHRINK)


def _validation_ndcg(
    rank: Callable[[int], tuple[np.ndarray, np.ndarray] | None], train: pd.DataFrame, held: pd.DataFrame
) -> float:
    relevant = held[held["rating"] >= RELEVANT].groupby("user_id")["movie_id"].agg(set)
    seen = train.groupby("user_id")["movie_id"].agg(set)
    values = []
    for user, rel in relevant.items():
        ranked = rank(int(user))
        if ranked is None:
            values.append(0.0)
            continue
        ids, scores = ranked
        blocked = np.isin(ids, np.fromiter(seen.get(user, set()), dtype=np.int64))
        top = top_k(np.where(blocked, -np.inf, scores), ids, K)
        values.append(ndcg_at_k(ids[top].tolist(), rel))
    return float(np.mean(values)) if values else 0.0
