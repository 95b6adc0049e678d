"""Popularity with a Bayesian average: the cold-start answer and the baseline every evaluation reports."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["bayesian_popularity"]


def bayesian_popularity(ratings: pd.DataFrame, *, prior_weight: float | None = None) -> pd.DataFrame:
    """Score each rated movie by its rating mean shrunk toward the global mean.

    ``score = (n * mean + m * global_mean) / (n + m)`` where ``m`` (``prior_weight``) defaults to the
    median number of ratings per movie, so a movie needs more than a typical number of votes before
    its own mean dominates. Returns a frame indexed by ``movie_id`` with ``count``, ``mean`` and
    ``score``, best first (ties broken by count, then id, so the order is deterministic).
    """
    if ratings.empty:
        return pd.DataFrame({"count": [], "mean": [], "score": []}, index=pd.Index([], name="movie_id"))
    grouped = ratings.groupby("movie_id")["rating"].agg(["count", "mean"])
    global_mean = float(ratings["rating"].mean())
    m = float(prior_weight if prior_weight is not None else max(1.0, float(np.median(grouped["count"]))))
    grouped["score"] = (grouped["count"] * grouped["mean"] + m * global_mean) / (grouped["count"] + m)
    grouped = grouped.reset_index().sort_values(
        ["score", "count", "movie_id"], ascending=[False, False, True], kind="mergesort"
    )
    return grouped.set_index("movie_id")
