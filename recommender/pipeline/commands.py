"""The trainer's other commands: ``--evaluate`` (model vs baselines, no publish) and the registry's
``--list-versions`` / ``--promote`` (no training, no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import TextIO

from recommender.core.config import Settings
from recommender.core.errors import NoModel
from recommender.families.base import FamilyParams
from recommender.persistence.registry import Registry
from recommender.pipeline.protocol import Done, Progress, Reporter, Start, finite, json_default

log = logging.getLogger(__name__)

__all__ = ["UsageError", "run_evaluate", "run_registry_command"]


class UsageError(Exception):
    """Bad flags or settings: exit code 2 with the message."""


def run_evaluate(
    args: argparse.Namespace, settings: Settings, reporter: Reporter, stdout: TextIO, params: FamilyParams
) -> None:
    """Train and score ``args.model`` next to the baselines on the protocol's split(s)."""
    from recommender.data.movielens import load_from_settings
    from recommender.pipeline import evaluate

    data = load_from_settings(settings, progress=reporter.out is None and not args.quiet)
    reporter.emit(Start(dataset=data.name, family=args.model, protocol=args.evaluate))

    def on_progress(message: str) -> None:
        if reporter.out is not None:
            reporter.emit(Progress(message))
        else:
            log.info("%s", message)

    result = evaluate.run_evaluation(
        data, args.evaluate, args.model, params, args.seed, on_progress=on_progress, ranker=args.ranker
    )
    if reporter.out is not None:
        reporter.emit(Done(ok=True, reason="evaluation only", metrics=finite(result)))
        return
    print(evaluate.format_table(result), file=stdout)
    if args.json:
        print(json.dumps(finite(result), allow_nan=False, default=json_default), file=stdout)


def run_registry_command(args: argparse.Namespace, settings: Settings, stdout: TextIO) -> None:
    """``--promote VERSION`` (e.g. a rollback) or ``--list-versions``."""
    registry = Registry(settings.models_dir)
    if args.promote:
        try:
            registry.set_current(args.promote)
        except NoModel as exc:
            detail = str(exc).removeprefix(str(NoModel()).strip()).strip()
            raise UsageError(f"cannot promote {args.promote}: {detail}") from None
        print(f"{args.promote} is now current; the bot picks it up on its next reload", file=stdout)
        return
    versions = registry.list_versions()
    if not versions:
        print(f"no model versions in {registry.root}", file=stdout)
    for info in versions:
        rmse = info.metrics.get("val_rmse")
        shown = f"val RMSE {rmse:.4f}" if isinstance(rmse, int | float) else "no metrics"
        mark = "*" if info.is_current else " "
        print(f"{mark} {info.version}  {info.metrics.get('dataset', '?'):<16} {shown}", file=stdout)
