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
from recommender.families.newcomers import MIN_NEWCOMERS, carve_newcomers, choose_star_weights
from recommender.families.ranker import RankerParams, StarWeightChooser, fit_ranker
from recommender.features.encoding import Encoded, encode, without_rows
from recommender.scoring.linalg import score

log = logging.getLogger(__name__)

__all__ = ["newcomer_check", "row_scorer", "train_model"]


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
        # nothing reads the encoding's per-rating arrays from here on: not carried through the
        # ranking model's fit (most of a gigabyte at ml-32m's size)
        result.encoded = enc = without_rows(enc)
        del val_u, val_m, val_pred, val_err
        rp = ranker if isinstance(ranker, RankerParams) else RankerParams.from_overrides(ranker)
        held, chooser = newcomer_check(ratings, movies, rp, scale, family, p, seed, on_epoch)
        ranking = fit_ranker(ratings, rp, seed, on_epoch, exclude_users=held, choose_star_weights=chooser)
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


def newcomer_check(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    rp: RankerParams,
    scale: RatingScale,
    family: str,
    p: FamilyParams | Mapping[str, Any],
    seed: int,
    on_epoch: EpochCallback | None,
) -> tuple[list[str], StarWeightChooser | None]:
    """Newcomers held out whole and a rating model fitted without them, to choose the star weights.

    Returns the held-out user keys (the ranker's validation fit leaves them out too) and the chooser
    ``fit_ranker`` calls with its validation model; nothing when the weights are fixed or a run has
    too few users to choose on (the fixed fallback table is served then).
    """
    if not rp.choose_star_weights or rp.newcomers <= 0 or rp.max_newcomers <= 0:
        return [], None
    # a sample of whole users bounds the extra fit on big datasets
    kept, newcomers = carve_newcomers(
        ratings, rp.newcomers, rp.max_newcomers, seed, max_kept=rp.newcomer_fit_ratings
    )
    if len(newcomers) < MIN_NEWCOMERS:
        log.info("star weights: %d newcomers, too few to choose on; the fallback table", len(newcomers))
        return [], None

    def newcomer_epoch(event: dict) -> None:
        if on_epoch is not None:
            on_epoch({**event, "stage": "newcomers"})

    check = train_model(
        kept, movies, scale=scale, family=family, params=p, seed=seed, on_epoch=newcomer_epoch
    ).serving
    if check is None:
        return [], None
    return list(newcomers.users), lambda validation: choose_star_weights(check, validation, newcomers)


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
