"""Baselines every evaluation reports beside the model: global mean, popularity, Surprise SVD."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recommender.data.popularity import bayesian_popularity
from recommender.scoring.linalg import score


class Algorithm(Protocol):
    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Any: ...
    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray: ...
    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None: ...


class GlobalMean:
    """Predicts the training mean for everything; has no ranking of its own."""

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> GlobalMean:
        self.mean = float(ratings["rating"].mean())
        return self

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.full(len(user_ids), self.mean)

    def rank_scores(self, user_id: int) -> None:
        return None


class Popularity:
    """Bayesian-average popularity (recommender/popularity.py): the cold-start answer."""

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Popularity:
        table = bayesian_popularity(ratings)
        self.mean = float(ratings["rating"].mean())
        self.ids = table.index.to_numpy(dtype=np.int64)
        # rank by the same order bayesian_popularity returns (score, then count, then id)
        self.scores = -np.arange(len(self.ids), dtype=np.float64)
        self.by_id = dict(
            zip(self.ids.tolist(), table["score"].to_numpy(dtype=np.float64).tolist(), strict=True)
        )
        return self

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.array([self.by_id.get(int(m), self.mean) for m in movie_ids], dtype=np.float64)

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray]:
        return self.ids, self.scores


class SurpriseSVD:
    """Surprise's SVD with its defaults, scored in numpy for the full-catalog ranking."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> SurpriseSVD:
        try:
            from surprise import SVD, Dataset, Reader
        except ImportError as exc:
            raise RuntimeError(
                "The surprise_svd baseline needs scikit-surprise: pip install -e '.[bench]'"
            ) from exc
        lo, hi = float(ratings["rating"].min()), float(ratings["rating"].max())
        data = Dataset.load_from_df(ratings[["user_id", "movie_id", "rating"]], Reader(rating_scale=(lo, hi)))
        self.trainset = data.build_full_trainset()
        self.algo = SVD(random_state=self.seed)
        self.algo.fit(self.trainset)
        self.lo, self.hi = lo, hi
        ts = self.trainset
        self.ids = np.array([int(ts.to_raw_iid(i)) for i in range(ts.n_items)], dtype=np.int64)
        self.item_index = {int(m): i for i, m in enumerate(self.ids.tolist())}
        return self

    def _inner_user(self, user_id: int) -> int | None:
        try:
            return int(self.trainset.to_inner_uid(int(user_id)))
        except ValueError:
            return None

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.array(
            [self.algo.predict(int(u), int(m)).est for u, m in zip(user_ids, movie_ids, strict=True)]
        )

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        u = self._inner_user(user_id)
        if u is None:
            return None
        a = self.algo
        return self.ids, score(self.trainset.global_mean, a.bu[u], a.bi, a.pu[u], a.qi)
