"""The publish gate's evidence: holdout metrics, and the paired comparison with the serving version."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recommender.core.errors import NoModel
from recommender.evaluation.metrics import RELEVANT, K, ndcg_at_k
from recommender.families.sequences import histories
from recommender.persistence.registry import Registry
from recommender.pipeline.frame import HOLDOUT_SCHEME
from recommender.scoring.linalg import top_k

log = logging.getLogger(__name__)

__all__ = [
    "compare_on_holdout",
    "compare_with_current",
    "holdout_metrics",
    "holdout_ndcg",
    "predict_rows",
    "training_histories",
]

#: Fewer shared held-out rows than this say nothing (e.g. a run on another --max-users).
MIN_PAIRED_ROWS = 100
#: Users whose held-out ranking is scored (an evenly spaced sample beyond: bounds the time).
MAX_RANKED_USERS = 2000

Histories = Mapping[str, np.ndarray]


def training_histories(ratings: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each user's trained-on movies, oldest first: what the ranking reads and what it must skip."""
    h = histories(ratings)
    return {key: h.movie_ids[items] for key, items in zip(h.users, h.items, strict=True)}


def _ranked(serving: Any, key: str, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(movie ids, scores) of the served ranking for a trained user, or None."""
    ranker = getattr(serving, "ranker", None)
    if ranker is not None:
        h = ranker.history(seen)
        return None if h.empty else (ranker.movie_ids, serving.served_scores(h, serving.user_vector(key))[0])
    user = serving.user_vector(key)
    return None if user is None else (serving.movie_ids, serving.rank_scores(user))


def holdout_ndcg(serving: Any, test: pd.DataFrame, trained: Histories) -> dict[str, float]:
    """NDCG@5 per user of the served ranking on held-out ratings (relevant: >= RELEVANT stars)."""
    liked = test[test["rating"] >= RELEVANT].groupby("user_key")["movie_id"].agg(set)
    keys = sorted(k for k in liked.index if k in trained)
    if len(keys) > MAX_RANKED_USERS:
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, MAX_RANKED_USERS).astype(int)]
    out = {}
    for key in keys:
        ranked = _ranked(serving, key, trained[key])
        if ranked is None:
            continue
        ids, scores = ranked
        scores = np.where(np.isin(ids, trained[key]), -np.inf, scores)
        out[key] = ndcg_at_k(ids[top_k(scores, ids, K)].tolist(), liked[key])
    return out


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
    serving: Any, test: pd.DataFrame, global_mean: float, trained: Histories | None = None
) -> dict[str, Any]:
    """RMSE/MAE of the exported (numpy) model on held-out MovieLens ratings, next to the global mean;
    with ``trained`` (each user's training history) also NDCG@5 of the served ranking."""
    if test.empty:
        return {"n": 0}
    ranking: dict[str, Any] = {}
    if trained is not None:
        per_user = holdout_ndcg(serving, test, trained)
        if per_user:
            ranking = {"ndcg@5": float(np.mean(list(per_user.values()))), "ndcg_users": len(per_user)}
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
        **ranking,
    }
    return out


def compare_on_holdout(
    new: Any, old: Any, test: pd.DataFrame, trained: Histories | None = None
) -> dict[str, Any] | None:
    """Both models' RMSE on the held-out rows both can score: the publish gate's paired test; with
    ``trained``, also both served rankings' NDCG@5 for the same held-out users."""
    if test.empty:
        return None
    scored_new, pred_new = predict_rows(new, test)
    scored_old, pred_old = predict_rows(old, test)
    both = scored_new & scored_old
    if both.sum() < MIN_PAIRED_ROWS:
        return None
    truth = test["rating"].to_numpy(dtype=np.float64)[both]
    out: dict[str, Any] = {
        "n": int(both.sum()),
        "new_rmse": float(np.sqrt(np.mean((pred_new[both] - truth) ** 2))),
        "old_rmse": float(np.sqrt(np.mean((pred_old[both] - truth) ** 2))),
    }
    if trained is not None:
        ndcg_new, ndcg_old = holdout_ndcg(new, test, trained), holdout_ndcg(old, test, trained)
        shared = sorted(set(ndcg_new) & set(ndcg_old))
        if shared:
            out["ndcg_users"] = len(shared)
            out["new_ndcg"] = float(np.mean([ndcg_new[k] for k in shared]))
            out["old_ndcg"] = float(np.mean([ndcg_old[k] for k in shared]))
    return out


def compare_with_current(
    registry: Registry,
    new: Any,
    test: pd.DataFrame,
    dataset: str,
    fraction: float,
    trained: Histories | None = None,
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
    paired = compare_on_holdout(new, old, test, trained)
    return None if paired is None else {"version": current, **paired}
