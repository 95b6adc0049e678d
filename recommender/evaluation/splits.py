"""Train/test splits: the ml-100k folds, a seeded random split, and leave-last-out by timestamp."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def ml100k_folds(ratings: pd.DataFrame) -> Iterator[Split]:
    """u1..u5 as ``mku.sh`` builds them: fold i tests on lines (i-1)*20000+1 .. i*20000 of u.data.

    ``ratings`` must be u.data in file order (``load_movielens`` keeps it).
    """
    if len(ratings) != 100_000:
        raise ValueError(
            f"ml100k-folds needs the 100,000 ratings of ml-100k in file order, got {len(ratings)}"
        )
    positions = np.arange(len(ratings))
    for i in range(1, 6):
        in_test = (positions >= (i - 1) * 20_000) & (positions < i * 20_000)
        yield Split(f"u{i}", ratings.iloc[~in_test], ratings.iloc[in_test])


def random_split(ratings: pd.DataFrame, *, seed: int, test_fraction: float = 0.1) -> Split:
    """Seeded uniform 90/10 split of the rating rows."""
    rng = np.random.default_rng(seed)
    in_test = np.zeros(len(ratings), dtype=bool)
    in_test[rng.permutation(len(ratings))[: round(len(ratings) * test_fraction)]] = True
    return Split(f"random-{seed}", ratings.iloc[~in_test], ratings.iloc[in_test])


def leave_last_out(ratings: pd.DataFrame, *, n_last: int = 10) -> Split:
    """Each user's ``n_last`` latest ratings are the test set (at most half of a user's ratings).

    Ties in the timestamp keep file order, so the split is deterministic.
    """
    order = ratings.assign(_pos=np.arange(len(ratings))).sort_values(
        ["user_id", "timestamp", "_pos"], kind="mergesort"
    )
    from_end = order.groupby("user_id").cumcount(ascending=False)
    size = order.groupby("user_id")["movie_id"].transform("size")
    in_test = (from_end < n_last) & (from_end < size // 2)
    test_pos = np.sort(order.loc[in_test.to_numpy(), "_pos"].to_numpy())
    mask = np.zeros(len(ratings), dtype=bool)
    mask[test_pos] = True
    return Split(f"leave-last-{n_last}", ratings.iloc[~mask], ratings.iloc[mask])
