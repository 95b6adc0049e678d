"""``KerasRecommender``: any family behind the evaluation's algorithm contract (fit / predict / recommend).

The comparison run (``pipeline/evaluate.py``) scores it next to the baselines on MovieLens user ids.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from recommender.core.types import RatingScale, ml_key
from recommender.families import get_family
from recommender.families.base import FamilyParams, TrainResult
from recommender.families.ranker import RankerParams
from recommender.families.sequences import histories
from recommender.families.training import row_scorer, train_model
from recommender.scoring.linalg import top_k

__all__ = ["KerasRecommender"]


class KerasRecommender:
    """The tiny algorithm contract (fit / predict / recommend) over MovieLens user ids."""

    def __init__(
        self,
        family: str = "mf",
        params: FamilyParams | Mapping[str, Any] | None = None,
        seed: int = 0,
        scale: RatingScale | None = None,
        ranker: RankerParams | Mapping[str, Any] | None = None,
    ) -> None:
        self.family = family
        self.params = params
        self.seed = seed
        self.scale = scale or RatingScale(1.0, 5.0, 1.0)
        self.ranker = ranker
        self.result: TrainResult | None = None
        self._scores: np.ndarray | None = None
        self._histories: dict[str, np.ndarray] = {}

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Self:
        self.result = train_model(
            ratings,
            movies,
            scale=self.scale,
            family=self.family,
            params=self.params,
            seed=self.seed,
            ranker=self.ranker,
        )
        self._scores = None
        if self.ranker is not None:  # each user's history in rating order: what the ranker reads
            h = histories(ratings)
            self._histories = {k: h.movie_ids[it] for k, it in zip(h.users, h.items, strict=True)}
        return self

    def _need(self) -> TrainResult:
        if self.result is None:
            raise RuntimeError("call fit() first")
        return self.result

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        """Clipped predictions; an unknown user or movie falls back to the training mean."""
        res = self._need()
        enc = res.encoded
        assert enc is not None
        ui, mi = enc.user_index, enc.movie_index
        u = np.fromiter((ui.get(ml_key(x), -1) for x in user_ids), dtype=np.int64, count=len(user_ids))
        m = np.fromiter((mi.get(int(x), -1) for x in movie_ids), dtype=np.int64, count=len(movie_ids))
        out = np.full(len(u), enc.global_mean)
        ok = (u >= 0) & (m >= 0)
        if ok.any():
            out[ok] = get_family(res.family).predict(res.model, enc, self.scale, u[ok], m[ok])
        return np.clip(out, self.scale.minimum, self.scale.maximum)

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(movie_ids, scores)`` of the served ranking for a known user, else None."""
        res = self._need()
        enc = res.encoded
        assert enc is not None
        if res.serving is not None:
            ranker = res.serving.ranker
            if ranker is not None:  # what /recommend serves: the ranker, plus stars for short histories
                seen = self._histories.get(ml_key(user_id))
                if seen is None:
                    return None
                user = res.serving.user_vector(ml_key(user_id))
                return ranker.movie_ids, res.serving.served_scores(ranker.history(seen), user)[0]
            user = res.serving.user_vector(ml_key(user_id))
            return None if user is None else (res.serving.movie_ids, res.serving.rank_scores(user))
        u = enc.user_index.get(ml_key(user_id))
        if u is None:
            return None
        if self._scores is None:  # evaluate-only families: score the whole matrix once
            scorer = row_scorer(res, self.scale)
            all_users = np.arange(len(enc.user_keys))
            self._scores = np.vstack(
                [scorer(chunk) for chunk in np.array_split(all_users, max(1, len(all_users) // 256))]
            )
        prior = res.rank_weight * np.log1p(enc.counts.astype(np.float64))
        return enc.movie_ids, self._scores[u] + prior

    def recommend(self, user_id: int, k: int, exclude: Collection[int] = ()) -> list[int]:
        res = self._need()
        if res.serving is not None and res.serving.ranker is None:
            user = res.serving.user_vector(ml_key(user_id))
            if user is not None:
                return [m for m, _ in res.serving.recommend(user, k, exclude)]
        ranked = self.rank_scores(user_id)
        if ranked is None:
            return []
        ids, scores = ranked
        scores = scores.copy()
        scores[np.isin(ids, np.fromiter(exclude, dtype=np.int64))] = -np.inf
        return [int(ids[i]) for i in top_k(scores, ids, k)]
