"""Users as ordered histories for the ranking model: dense indices, the validation carve, NDCG on it.

Numpy only; the Keras part of the ranker (``families/ranker.py``) and its item-item part both read
these. The validation slice is each user's latest ratings, carved from the *training* ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.evaluation.metrics import RELEVANT, K, ndcg_at_k
from recommender.features.encoding import user_keys_of
from recommender.scoring.linalg import top_k

__all__ = ["Histories", "carve_latest", "histories", "ndcg_of_scores"]


@dataclass
class Histories:
    """Each user's rated movies (dense item indices) and stars, oldest first."""

    movie_ids: np.ndarray  # (I,) int64: dense index -> dataset movie id
    users: list[str]
    items: list[np.ndarray]
    stars: list[np.ndarray]

    @property
    def n_items(self) -> int:
        return int(self.movie_ids.size)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.items), dtype=np.int64, count=len(self.items))


def histories(ratings: pd.DataFrame, movie_ids: np.ndarray | None = None) -> Histories:
    """Group ``ratings`` by user (``user_key`` or ``user_id``) in time order (file order on ties).

    ``movie_ids``: the item index to use; by default every movie in ``ratings``, sorted.
    """
    if movie_ids is None:
        movie_ids = np.sort(ratings["movie_id"].unique()).astype(np.int64)
    # sorted codes order users as their keys do, and sort far faster than strings at millions of rows
    keys, names = pd.factorize(user_keys_of(ratings).to_numpy(), sort=True)
    item = np.searchsorted(movie_ids, ratings["movie_id"].to_numpy(dtype=np.int64))
    item = np.minimum(item, len(movie_ids) - 1)
    known = movie_ids[item] == ratings["movie_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((np.arange(len(ratings)), ratings["timestamp"].to_numpy(), keys))
    order = order[known[order]]
    keys, item = keys[order], item[order]
    stars = ratings["rating"].to_numpy(dtype=np.float32)[order]
    if not len(keys):
        return Histories(movie_ids, [], [], [])
    bounds = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(keys)]])
    return Histories(
        movie_ids,
        [str(names[keys[s]]) for s in starts],
        [item[s:e] for s, e in zip(starts, ends, strict=True)],
        [stars[s:e] for s, e in zip(starts, ends, strict=True)],
    )


def carve_latest(h: Histories, n_last: int = 10) -> tuple[Histories, dict[int, set[int]]]:
    """Each user's ``n_last`` latest ratings (at most half of them) held out.

    Returns the shortened histories and, per user position, the held-out movies rated >= RELEVANT.
    """
    items, stars, relevant = [], [], {}
    for u, (it, st) in enumerate(zip(h.items, h.stars, strict=True)):
        cut = len(it) - min(n_last, len(it) // 2)
        items.append(it[:cut])
        stars.append(st[:cut])
        liked = set(it[cut:][st[cut:] >= RELEVANT].tolist())
        if liked and cut > 0:
            relevant[u] = liked
    return Histories(h.movie_ids, h.users, items, stars), relevant


def ndcg_of_scores(scores: np.ndarray, seen: np.ndarray, relevant: set[int], k: int = K) -> float:
    """NDCG@k of the ranking ``scores`` (dense items) with the ``seen`` items left out."""
    s = scores.astype(np.float64, copy=True)
    s[seen] = -np.inf
    ids = np.arange(s.size)
    return ndcg_at_k(top_k(s, ids, k).tolist(), relevant, k)
