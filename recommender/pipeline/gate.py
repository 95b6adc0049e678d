"""The publish gate's evidence: holdout metrics, and the paired comparison with the serving version."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from recommender.core.errors import NoModel
from recommender.evaluation.metrics import RELEVANT, K, ndcg_at_k
from recommender.persistence.registry import Registry
from recommender.pipeline.frame import HOLDOUT_SCHEME

log = logging.getLogger(__name__)

__all__ = ["compare_on_holdout", "compare_with_current", "holdout_metrics", "holdout_ndcg", "predict_rows"]

#: Fewer shared held-out rows than this say nothing (e.g. a run on another --max-users).
MIN_PAIRED_ROWS = 100


def predict_rows(serving: Any, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predictions of a (numpy) serving model for ``test``; a mask of rows it could score at all."""
    scored = np.zeros(len(test), dtype=bool)
    preds = np.full(len(test), np.nan)
    positions = pd.RangeIndex(len(test))
    for key, rows in test.reset_index(drop=True).groupby("user_key", sort=False):
        user = serving.user_vector(key)
        if user is None:
            continue  # the user's ratings all fell into the holdout, or another model's user set
        movies = rows["movie_id"].to_numpy()
        known = np.array([serving.has_movie(int(m)) for m in movies], dtype=bool)
        if known.any():
            idx = positions[rows.index.to_numpy()[known]]
            preds[idx] = np.asarray(serving.predict(user, movies[known]), dtype=np.float64)
            scored[idx] = True
    return scored, preds


def holdout_metrics(
    serving: Any, test: pd.DataFrame, global_mean: float, train: pd.DataFrame | None = None
) -> dict[str, Any]:
    """RMSE/MAE of the exported (numpy) model on held-out MovieLens ratings, next to the global mean;
    with ``train``, also NDCG@5 of what the bot would recommend (see :func:`holdout_ndcg`)."""
    if test.empty:
        return {"n": 0}
    scored, preds = predict_rows(serving, test)
    if not scored.any():
        return {"n": 0, "skipped": len(test)}
    truth = test["rating"].to_numpy(dtype=np.float64)[scored]
    err, base = preds[scored] - truth, global_mean - truth
    out = {
        "n": int(scored.sum()),
        "skipped": int((~scored).sum()),  # users or movies the model never saw in training
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "global_mean_rmse": float(np.sqrt(np.mean(base**2))),
    }
    if train is not None:
        out.update(holdout_ndcg(serving, test, train))
    return out


def holdout_ndcg(serving: Any, test: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
    """NDCG@5 on the held-out rows: each user's top 5 among the movies they did not train on (the
    served ranking), against their held-out movies rated at least ``RELEVANT`` stars."""
    relevant = test[test["rating"] >= RELEVANT].groupby("user_key", sort=False)["movie_id"].agg(set)
    if relevant.empty:
        return {}
    seen = train[train["user_key"].isin(relevant.index)].groupby("user_key", sort=False)["movie_id"].agg(set)
    values = []
    for key, movies in relevant.items():
        user = serving.user_vector(key)
        if user is None:
            continue
        picks = serving.recommend(user, K, exclude=seen.get(key, set()))
        values.append(ndcg_at_k([movie for movie, _ in picks], movies, K))
    if not values:
        return {}
    return {f"ndcg@{K}": float(np.mean(values)), "ndcg_users": len(values)}


def compare_on_holdout(new: Any, old: Any, test: pd.DataFrame) -> dict[str, Any] | None:
    """Both models' RMSE on the held-out rows both can score: the publish gate's paired test."""
    if test.empty:
        return None
    scored_new, pred_new = predict_rows(new, test)
    scored_old, pred_old = predict_rows(old, test)
    both = scored_new & scored_old
    if both.sum() < MIN_PAIRED_ROWS:
        return None
    truth = test["rating"].to_numpy(dtype=np.float64)[both]
    return {
        "n": int(both.sum()),
        "new_rmse": float(np.sqrt(np.mean((pred_new[both] - truth) ** 2))),
        "old_rmse": float(np.sqrt(np.mean((pred_old[both] - truth) ** 2))),
    }


def compare_with_current(
    registry: Registry, new: Any, test: pd.DataFrame, dataset: str, fraction: float
) -> dict | None:
    """Score the serving version on this run's held-out rows (see :meth:`Registry.decide`)."""
    current = registry.current_version()
    if current is None or test.empty:
        return None
    try:
        old_metrics = registry.read_metrics(current)
        if old_metrics.get("dataset") != dataset:
            return None
        # Only fair if the serving version never trained on these rows: same hash, and it held
        # out at least as much (rows with hash < new fraction <= old fraction).
        old_holdout = old_metrics.get("holdout") or {}
        if old_holdout.get("scheme") != HOLDOUT_SCHEME or old_holdout.get("fraction", 0) < fraction:
            log.info("serving version %s used another holdout; comparing recorded RMSEs", current)
            return None
        old = registry.load(current)
    except NoModel as exc:
        log.warning("cannot compare with the serving version %s: %s", current, exc)
        return None
    paired = compare_on_holdout(new, old, test)
    return None if paired is None else {"version": current, **paired}
