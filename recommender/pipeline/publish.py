"""One training run end to end: frame -> fit -> holdout metrics -> store -> publish decision."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from recommender.core.config import Settings
from recommender.families.base import FamilyParams
from recommender.persistence.registry import METRICS, Registry
from recommender.pipeline.frame import HOLDOUT_SCHEME, build_training_frame
from recommender.pipeline.gate import compare_with_current, holdout_metrics, training_histories
from recommender.pipeline.protocol import Done, Epoch, Reporter, Start, finite, json_default

log = logging.getLogger(__name__)

__all__ = ["run_training"]


def run_training(
    args: argparse.Namespace, settings: Settings, reporter: Reporter, params: FamilyParams
) -> Done:
    """Train ``args.model`` with ``params``, store the version, publish it if it is good enough."""
    from recommender.data.movielens import load_from_settings
    from recommender.families.keras_fit import plot_loss
    from recommender.families.training import train_model
    from recommender.persistence.storage import read_added_movies, read_member_ratings

    registry = Registry(settings.models_dir)
    version = registry.new_version(args.model)
    with reporter.phase("loading the dataset", event=False):
        data = load_from_settings(settings, progress=reporter.out is None and not args.quiet)
    # Taken before the members' ratings are read: the service treats ratings stored after this
    # moment as not yet learned (it folds them in), so it must never be later than the read.
    started = time.time()
    members = read_member_ratings(settings.storage_location) if not args.no_members else pd.DataFrame()
    if members.empty:
        members = pd.DataFrame({"user_id": [], "movie_id": [], "rating": [], "timestamp": []})
    # the catalogue's added movies are trained on with the members' ratings of them
    added = read_added_movies(settings.storage_location) if not args.no_members else None
    with reporter.phase("building the training frame", event=False):
        frame = build_training_frame(
            data, members, max_users=args.max_users, test_fraction=args.test_fraction, added=added
        )
    ratings, test = frame.ratings, frame.test
    # The frame holds its own copy: the dataset's ratings would stay alive through training (0.6 GiB
    # at ml-32m's size) for nothing. A copy: an empty slice is a view that keeps them alive.
    data = dataclasses.replace(data, ratings=data.ratings.iloc[:0].copy())
    counts = {
        "n_ratings": len(ratings),
        "n_member_ratings": frame.n_member_ratings,
        "n_members": frame.n_members,
    }
    reporter.emit(
        Start(
            version=version,
            dataset=data.name,
            family=args.model,
            seed=args.seed,
            params=params.changed(),
            **counts,
        )
    )
    with reporter.phase("fitting the rating and ranking models"):
        result = train_model(
            ratings,
            frame.movies if frame.movies is not None else data.movies,
            scale=data.scale,
            family=args.model,
            params=params,
            seed=args.seed,
            on_epoch=lambda info: reporter.emit(Epoch.from_dict({"event": Epoch.kind, **info})),
            version=version,
            ranker=getattr(args, "ranker", None),
        )
    serving = result.serving
    if serving is None:
        raise RuntimeError(f"training {args.model} returned no serving model")
    # The service folds in ratings made after this moment; without it every member looks untrained.
    serving.trained_at = started
    with reporter.phase("scoring the held-out ratings"):
        trained = training_histories(ratings)
        test_metrics = holdout_metrics(serving, test, float(ratings["rating"].mean()), trained)
    with reporter.phase("comparing with the serving version"):
        compared = compare_with_current(registry, serving, test, data.name, args.test_fraction, trained)
    metrics: dict[str, Any] = {
        **result.metrics,
        "version": version,
        "family": args.model,
        "dataset": data.name,
        "seed": args.seed,
        "params": {**params.to_dict(), "rank_weight_chosen": result.rank_weight},
        "val_rmse": float(result.val_rmse),
        "test": test_metrics,
        **counts,
        "max_users": args.max_users,
        "trained_at": started,
        "fit_seconds": float(result.fit_seconds),
        "holdout": {"scheme": HOLDOUT_SCHEME, "fraction": args.test_fraction},
        "compared_with": compared,
    }
    metrics = finite(metrics)

    def write(folder: Path) -> None:
        serving.save(folder)
        result.model.save(folder / "model.keras")
        plot_loss(result.history, folder / "loss.png", title=f"{version} ({data.name})")
        with (folder / METRICS).open("w", encoding="utf-8") as fh:
            json.dump(metrics, fh, indent=2, sort_keys=True, allow_nan=False, default=json_default)

    with reporter.phase("saving the model"):
        folder = registry.store(version, write)
    decision = registry.decide(metrics, tolerance=args.tolerance, force=args.force)
    if decision.publish:
        registry.set_current(version)
    registry.prune(keep=args.keep)
    state = "published" if decision.publish else "stored, not published"
    log.info("%s %s: %s", state, version, decision.reason)
    done = Done(
        ok=True,
        published=decision.publish,
        version=version,
        family=args.model,
        trained_at=started,
        reason=decision.reason,
        metrics=metrics,
        plot=str(folder / "loss.png"),
    )
    reporter.emit(done)
    if reporter.out is None:
        print(f"{version} {'published' if decision.publish else 'NOT published'}: {decision.reason}")
        print(f"val RMSE {metrics['val_rmse']:.4f}; loss curve {folder / 'loss.png'}")
    return done
