"""Members with few ratings: how much of the rating model's ranking they are served, chosen per run.

With five ratings the ranking model knows little of a member, and the rating model's view (predicted
stars plus the popularity prior, see ``ServingModel.served_scores``) may rank better; with twenty it
rarely does. How much depends on the dataset, so every training run chooses it on *newcomers*:
training users held out whole, scored the way ``benchmarks/bench_coldstart.py`` scores new members.
The rating model and the ranking model used for the choice are both fitted without the newcomers,
so they are as new to the models as a member who joins tomorrow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.evaluation.metrics import RELEVANT, K, ndcg_at_k
from recommender.features.encoding import user_keys_of
from recommender.scoring.linalg import top_k
from recommender.scoring.model import ServingModel
from recommender.scoring.ranking import RankingModel

__all__ = [
    "FIRST_N",
    "MIN_NEWCOMERS",
    "STAR_WEIGHT_GRID",
    "Newcomers",
    "carve_newcomers",
    "choose_star_weights",
]

#: a newcomer is scored after telling the bot their first n ratings, for each n (the table's rows)
FIRST_N = (5, 10, 20)
MIN_REST = 5  # ... and needs this many later ratings to be scored on
#: fewer scorable newcomers than this and the choice would be noise: the fixed table is used instead
MIN_NEWCOMERS = 20
#: 1000 is the rating model's ranking alone (the ranking model only breaks its ties)
STAR_WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 32.0, 1000.0)


@dataclass(frozen=True)
class Newcomer:
    movie_ids: np.ndarray  # every rating of theirs, oldest first
    stars: np.ndarray
    relevant: frozenset[int]  # movies rated >= RELEVANT after their first max(FIRST_N)


@dataclass(frozen=True)
class Newcomers:
    """Training users held out whole (keys as in ``user_keys_of``), each with their history."""

    users: dict[str, Newcomer]

    def __len__(self) -> int:
        return len(self.users)


def carve_newcomers(
    ratings: pd.DataFrame, share: float, cap: int, seed: int, max_kept: int | None = None
) -> tuple[pd.DataFrame, Newcomers]:
    """Hold out ``share`` of the users who have enough ratings to be scored (at most ``cap``).

    Returns the ratings without them and the newcomers; draws with ``seed``. With ``max_kept``,
    the ratings returned are a sample of whole users of about that many ratings (what the check's
    rating model is fitted on): taken in one copy, never a copy of every other rating first.
    """
    keys = user_keys_of(ratings)
    codes, names = pd.factorize(keys)  # users in order of first appearance
    counts = np.bincount(codes, minlength=len(names))
    eligible = np.sort(names[counts >= max(FIRST_N) + MIN_REST].to_numpy(dtype=str))
    take = min(cap, round(len(names) * share), eligible.size)
    if take <= 0:
        return ratings, Newcomers({})
    chosen = set(np.random.default_rng(seed).choice(eligible, take, replace=False).tolist())
    chosen_codes = np.flatnonzero(pd.Index(names).isin(chosen))
    held = np.isin(codes, chosen_codes)
    mine = ratings.loc[held].assign(_key=keys[held].to_numpy())
    # time order, file order on ties: what the ranking model reads a history in
    mine = mine.iloc[
        np.lexsort((np.arange(len(mine)), mine["timestamp"].to_numpy(), mine["_key"].to_numpy()))
    ]
    users = {}
    for key, g in mine.groupby("_key", sort=True):
        ids = g["movie_id"].to_numpy(dtype=np.int64)
        stars = g["rating"].to_numpy(dtype=np.float64)
        later = max(FIRST_N)
        relevant = frozenset(ids[later:][stars[later:] >= RELEVANT].tolist())
        if relevant:
            users[str(key)] = Newcomer(ids, stars, relevant)
    kept = ~held
    n_kept = int(kept.sum())
    if max_kept is not None and n_kept > max_kept:
        others = np.setdiff1d(np.arange(len(names)), chosen_codes)  # in order of first appearance
        pick = np.random.default_rng(seed).random(others.size) < max_kept / n_kept
        kept = np.isin(codes, others[pick])
    return ratings.loc[kept], Newcomers(users)


def _ndcg_by_weight(
    served: ServingModel,
    first_ids: np.ndarray,
    first_stars: np.ndarray,
    relevant: frozenset[int],
    grid: Sequence[float],
) -> list[float]:
    """NDCG@K of the served ranking for one newcomer who told the bot ``first_*``, per weight."""
    ranker = served.ranker
    assert ranker is not None
    known = np.array([served.has_movie(int(m)) for m in first_ids], dtype=bool)
    user = served.fold_in(first_ids[known], first_stars[known])
    history = ranker.history(first_ids.tolist())
    blocked = ranker.movie_index(first_ids.tolist())
    blocked = blocked[blocked >= 0]
    out = []
    for weight in grid:
        ranker.star_weights = ((10**9, float(weight)),)
        scores = served.served_scores(history, user)[0].astype(np.float64)
        scores[blocked] = -np.inf
        top = top_k(scores, ranker.movie_ids, K)
        out.append(ndcg_at_k([int(ranker.movie_ids[i]) for i in top], relevant, K))
    return out


def choose_star_weights(
    model: ServingModel, ranker: RankingModel, newcomers: Newcomers, grid: Sequence[float] = STAR_WEIGHT_GRID
) -> tuple[tuple[tuple[int, float], ...], dict]:
    """The star-weight table that serves ``newcomers`` best, and what each weight scored.

    ``model`` and ``ranker`` must have been fitted without the newcomers. For each n in FIRST_N the
    weight with the highest mean NDCG@K over the newcomers' first n ratings is chosen (ties: the
    smaller weight); counts past the last n get none.
    """
    saved = ranker.star_weights
    served = dataclasses.replace(model, ranker=ranker)
    by_n: dict[int, np.ndarray] = {}
    try:
        for n in FIRST_N:
            rows = [
                _ndcg_by_weight(served, u.movie_ids[:n], u.stars[:n], u.relevant, grid)
                for u in newcomers.users.values()
            ]
            by_n[n] = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    finally:
        ranker.star_weights = saved
    table = []
    for n, means in by_n.items():
        best = max(range(len(grid)), key=lambda i: (round(float(means[i]), 6), -grid[i]))
        table.append((n, float(grid[best])))
    metrics = {
        "newcomers": len(newcomers),
        "grid": [float(w) for w in grid],
        "val_ndcg_by_n": {str(n): [float(x) for x in means] for n, means in by_n.items()},
        "star_weights": [list(x) for x in table],
    }
    return tuple(table), metrics
