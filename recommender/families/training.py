"""Train one family: encode, fit, export (if servable), choose the rank weight, report metrics.

Runs in the trainer process (train.py / the retrain worker), never in the bot: fitting imports
TensorFlow. Early stopping watches a validation slice carved from the *training* ratings only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from recommender.core.types import RatingScale
from recommender.families import get_family, make_params
from recommender.families.base import EpochCallback, FamilyParams, TrainResult
from recommender.families.keras_fit import choose_rank_weight, configure_tensorflow
from recommender.families.ranker import RankerParams, fit_ranker
from recommender.features.encoding import Encoded, encode
from recommender.scoring.linalg import score

log = logging.getLogger(__name__)

__all__ = ["row_scorer", "train_model"]


def train_model(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    *,
    scale: RatingScale,
    family: str = "mf",
    params: FamilyParams | Mapping[str, Any] | None = None,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    version: str = "",
    ranker: RankerParams | Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fit one family, early-stopped on a validation slice of ``ratings``; export if servable.

    ``params`` is the family's params dataclass or overrides of its defaults (ValueError if bad).
    ``ranker``: also fit the ranking model (its params, or overrides; ``{}`` for the defaults) and
    attach it to the serving model, so /recommend is ordered by it.
    """
    called_at = time.time()  # the ratings given are at least this fresh: the default trained_at
    fam = get_family(family)
    p = make_params(family, params)
    configure_tensorflow()
    enc = encode(ratings, movies, p.val_fraction, seed)
    started = time.perf_counter()
    fitted = fam.fit(p, enc, scale, seed, on_epoch)
    fit_seconds = time.perf_counter() - started

    serving = fam.export(fitted.model, p, enc, scale, seed=seed, version=version) if fam.servable else None
    val_u, val_m = enc.users[enc.val], enc.movies[enc.val]
    val_pred = fam.predict(fitted.model, enc, scale, val_u, val_m) if enc.val.size else np.zeros(0)
    val_err = np.clip(val_pred, scale.minimum, scale.maximum) - enc.ratings[enc.val]
    result = TrainResult(
        model=fitted.model,
        family=family,
        params=p,
        seed=seed,
        history=fitted.history,
        serving=serving,
        val_rmse=float(np.sqrt(np.mean(val_err**2))) if val_err.size else float(fitted.val_rmse),
        metrics={},
        fit_seconds=fit_seconds,
        encoded=enc,
    )
    chosen = p.rank_weight
    if chosen is None:
        chosen = choose_rank_weight(row_scorer(result, scale), enc)
    result.rank_weight = float(chosen)
    result.metrics = {
        "val_rmse": result.val_rmse,
        "val_mae": float(np.mean(np.abs(val_err))) if val_err.size else math.nan,
        "n_ratings": len(enc.ratings),
        "n_users": len(enc.user_keys),
        "n_movies": len(enc.movie_ids),
        "epochs_run": len(fitted.history.get("loss", [])),
        "best_epoch": fitted.best_epoch,
        "export_max_abs_diff": serving.metrics.get("export_max_abs_diff") if serving is not None else None,
        "rank_weight": result.rank_weight,
        "fit_seconds": fit_seconds,
    }
    ranking = None
    if ranker is not None and serving is not None:
        ranking = fit_ranker(ratings, ranker, seed, on_epoch)
        result.metrics["ranker"] = ranking.metrics
    if serving is not None:
        # replace() re-runs __post_init__, which caches the ranking prior of the chosen weight;
        # train.py may overwrite trained_at with the time it read the ratings
        result.serving = dataclasses.replace(
            serving,
            rank_weight=result.rank_weight,
            metrics=dict(result.metrics),
            trained_at=called_at,
            ranker=ranking,
        )
    log.info("trained %s in %.1fs: val RMSE %.4f", family, fit_seconds, result.val_rmse)
    return result


def row_scorer(result: TrainResult, scale: RatingScale) -> Callable[[np.ndarray], np.ndarray]:
    """Unclipped predicted ratings of dense users x every indexed movie."""
    enc: Encoded | None = result.encoded
    assert enc is not None
    if result.serving is not None:
        s = result.serving
        return lambda users: score(
            s.global_mean, s.user_bias[users], s.item_bias, s.user_factors[users], s.item_factors
        )
    fam = get_family(result.family)
    ni = len(enc.movie_ids)

    def rows(users: np.ndarray) -> np.ndarray:
        uu, mm = np.repeat(users, ni), np.tile(np.arange(ni), len(users))
        return fam.predict(result.model, enc, scale, uu, mm).reshape(len(users), ni)

    return rows
