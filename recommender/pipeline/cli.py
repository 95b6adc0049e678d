"""Train a recommender on MovieLens plus the members' ratings and publish it to the model registry.

    python train.py --dataset ml-latest-small                     # hybrid (the default); publish if not worse
    python train.py --model mf --force                            # another family; publish even if worse
    python train.py --dataset ml-100k --evaluate ml100k-folds     # compare with baselines, no publish
    python train.py --progress-json ...                           # the retrain worker's protocol

With ``--progress-json`` stdout carries only JSON lines (``pipeline/protocol.py``); logs, TensorFlow
chatter and everything else go to stderr. Exit codes: 0 published (or evaluated), 3 trained and
stored but not published (worse than the serving version), 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from recommender.core.config import ConfigError, Settings
from recommender.core.processes import die_with_parent
from recommender.core.types import DATASETS
from recommender.families import DEFAULT_FAMILY, FAMILIES, SERVABLE_FAMILIES, make_params
from recommender.families.base import FamilyParams
from recommender.families.ranker import RankerParams
from recommender.persistence.registry import DEFAULT_KEEP, DEFAULT_TOLERANCE
from recommender.pipeline.commands import UsageError, run_evaluate, run_registry_command
from recommender.pipeline.evaluate import PROTOCOLS
from recommender.pipeline.protocol import Done, Reporter

log = logging.getLogger("train")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_PUBLISHED = 0, 1, 2, 3
#: Shortcut flags for the hyper-parameters people change most; any other goes through --param.
PARAM_FLAGS = {"epochs": int, "dim": int, "lr": float, "batch_size": int, "l2": float, "patience": int}


class Cancelled(BaseException):
    """SIGTERM from the worker (graceful shutdown): unwind so staging folders are cleaned up."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train.py", description="Train on MovieLens plus member ratings; publish to BOT_DATA_DIR/models."
    )
    p.add_argument(
        "--dataset", choices=sorted(DATASETS), help="default: MOVIELENS_DATASET or ml-latest-small"
    )
    p.add_argument(
        "--model",
        default=DEFAULT_FAMILY,
        choices=list(FAMILIES),
        help=f"model family (default: {DEFAULT_FAMILY}: embeddings plus genres, year and popularity)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for splits and initialisation (default: 0)")
    for name, kind in PARAM_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=f"hyper-parameter {name}")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other hyper-parameter of the family (repeatable), e.g. --param dropout=0.2",
    )
    p.add_argument(
        "--no-ranker",
        action="store_true",
        help="skip the ranking model: /recommend orders by predicted stars plus a popularity prior",
    )
    p.add_argument(
        "--ranker-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyper-parameter of the ranking model (repeatable), e.g. --ranker-param epochs=10",
    )
    p.add_argument("--force", action="store_true", help="publish even if validation RMSE is worse")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"publish only if val RMSE <= serving version's + this, in stars (default {DEFAULT_TOLERANCE})",
    )
    p.add_argument("--test-fraction", type=float, default=0.05, help="MovieLens ratings held out for tests")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="model versions to keep on disk")
    p.add_argument("--max-users", type=int, help="train on the first N MovieLens users only (quick runs)")
    p.add_argument("--no-members", action="store_true", help="ignore the bot's member ratings")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: 2)")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    p.add_argument("--no-dotenv", action="store_true", help="read settings from the environment only")
    p.add_argument("--evaluate", choices=PROTOCOLS, metavar="PROTOCOL", help=f"one of {', '.join(PROTOCOLS)}")
    p.add_argument("--json", action="store_true", help="with --evaluate: results as JSON on the last line")
    p.add_argument("--progress-json", action="store_true", help="JSON lines on stdout (the worker protocol)")
    p.add_argument("--quiet", action="store_true", help="warnings only on stderr")
    p.add_argument(
        "--parent-pid",
        type=int,
        help="exit when this process (the bot that started the run) dies; Linux, set by the worker",
    )
    ops = p.add_mutually_exclusive_group()
    ops.add_argument("--list-versions", action="store_true", help="list stored versions and exit")
    ops.add_argument("--promote", metavar="VERSION", help="serve a stored version (e.g. roll back) and exit")
    return p.parse_args(argv)


def collect_params(args: argparse.Namespace) -> FamilyParams:
    """The family's typed params: its defaults with the flags and ``--param KEY=VALUE`` applied."""
    overrides: dict[str, Any] = {n: getattr(args, n) for n in PARAM_FLAGS if getattr(args, n) is not None}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value.strip()
    try:
        return make_params(args.model, overrides)
    except ValueError as exc:
        raise UsageError(f"--model {args.model}: {exc}") from None


def collect_ranker_params(args: argparse.Namespace) -> RankerParams | None:
    """The ranking model's params (None with ``--no-ranker``)."""
    if args.no_ranker:
        return None
    overrides: dict[str, Any] = {}
    for item in args.ranker_param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--ranker-param expects KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value.strip()
    try:
        return RankerParams.from_overrides(overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_args(args: argparse.Namespace) -> None:
    if args.json and not args.evaluate:
        raise UsageError("--json goes with --evaluate; use --progress-json for training events")
    if not 0 <= args.test_fraction < 0.5:
        raise UsageError("--test-fraction must be in [0, 0.5)")
    if args.tolerance < 0 or not math.isfinite(args.tolerance):
        raise UsageError("--tolerance must be a finite number >= 0")
    if args.max_users is not None and args.max_users < 1:
        raise UsageError("--max-users must be at least 1")
    if not args.evaluate and not (args.list_versions or args.promote) and args.model not in SERVABLE_FAMILIES:
        raise UsageError(
            f"--model {args.model} can be evaluated but not served; use --evaluate PROTOCOL, or one of "
            f"{', '.join(SERVABLE_FAMILIES)} to publish"
        )


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point. ``out`` receives the JSON lines in tests (default: the real stdout)."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    with contextlib.ExitStack() as stack:
        if args.progress_json and out is None:
            out = stack.enter_context(_json_stdout())
        reporter = Reporter(out if args.progress_json else None, quiet=args.quiet)
        if args.parent_pid and not die_with_parent(args.parent_pid):
            # The bot died before this run got going: nobody is left to serve or report its result.
            reporter.emit(Done.failure(f"the bot (pid {args.parent_pid}) that started this run is gone"))
            return EXIT_FAILED
        return _run(args, reporter, stdout=sys.stdout)


def _run(args: argparse.Namespace, reporter: Reporter, *, stdout: TextIO) -> int:
    def failed(reason: str, code: int) -> int:
        reporter.emit(Done.failure(reason))
        if reporter.out is None:
            print(f"train.py: {reason}", file=sys.stderr)
        return code

    try:
        settings = Settings.from_env(dotenv=None if args.no_dotenv else ".env")
        if args.dataset:
            settings = dataclasses.replace(settings, movielens_dataset=args.dataset)
        _setup_logging(settings.log_level, quiet=args.quiet)
        if args.nice:
            os.nice(args.nice)
        _check_args(args)
        if args.list_versions or args.promote:
            run_registry_command(args, settings, stdout)
            return EXIT_OK
        params = collect_params(args)
        args.ranker = collect_ranker_params(args)
        from recommender.families.keras_fit import configure_tensorflow

        configure_tensorflow(args.threads)
        if args.evaluate:
            run_evaluate(args, settings, reporter, stdout, params)
            return EXIT_OK
        from recommender.pipeline.publish import run_training

        return EXIT_OK if run_training(args, settings, reporter, params).published else EXIT_NOT_PUBLISHED
    except (UsageError, ConfigError) as exc:
        return failed(f"usage: {exc}", EXIT_USAGE)
    except (Cancelled, KeyboardInterrupt) as exc:
        why = str(exc) or "interrupted"
        log.warning("training cancelled: %s", why)
        return failed(f"cancelled ({why}); the serving model is unchanged", EXIT_FAILED)
    except Exception as exc:
        log.exception("training failed")
        return failed(f"training failed: {type(exc).__name__}: {exc}", EXIT_FAILED)


@contextlib.contextmanager
def _json_stdout() -> Iterator[TextIO]:
    """Keep the real stdout for JSON lines only: anything else writing to fd 1 lands on stderr."""
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)  # C-level writes (TensorFlow) included
    out = os.fdopen(json_fd, "w", buffering=1, encoding="utf-8")
    try:
        yield out
    finally:
        out.close()


def _setup_logging(level: str, *, quiet: bool) -> None:
    root = logging.getLogger()
    if root.handlers:  # already configured (an embedding program, or pytest): leave it alone
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel("WARNING" if quiet else level)


def _handle_sigterm(signum: int, frame: Any) -> None:
    raise Cancelled(f"stopped by signal {signum}")


def entry() -> int:
    """The process entry point (``python -m recommender.pipeline`` and ``train.py``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise here
    signal.signal(signal.SIGTERM, _handle_sigterm)
    return main()
