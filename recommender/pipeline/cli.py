"""Train a recommender on MovieLens plus the members' ratings and publish it to the model registry.

    python train.py --dataset ml-latest-small                     # hybrid (the default); publish if not worse
    python train.py --model mf --force                            # another family; publish even if worse
    python train.py --dataset ml-100k --evaluate ml100k-folds     # compare with baselines, no publish
    python train.py --progress-json ...                           # the retrain worker's protocol

With ``--progress-json`` stdout carries only JSON lines (``start``, ``epoch``..., ``done``); logs,
TensorFlow chatter and everything else go to stderr. Exit codes: 0 published (or evaluated),
3 trained and stored but not published (worse than the serving version), 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from recommender.core.config import ConfigError, Settings
from recommender.core.types import DATASETS
from recommender.persistence.registry import DEFAULT_KEEP, DEFAULT_TOLERANCE, METRICS, Registry
from recommender.pipeline.worker import failure_event

log = logging.getLogger("train")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_PUBLISHED = 0, 1, 2, 3
# mirrors training.FAMILIES without importing TF for --help
FAMILIES = ("mf", "mlp", "hybrid", "classifier", "bpmf")
# hybrid is mf plus movie features (genres, year, shrunk mean, log count) feeding the movie vector. It
# beats plain mf on every benchmark here (ml-100k folds 0.904 vs 0.917; ml-latest-small 4.7-6.1% below
# Surprise SVD vs 1.9-2.9%: benchmarks/RESULTS.md), exports to the same arrays, and serves the same way.
DEFAULT_FAMILY = "hybrid"
PROTOCOLS = ("ml100k-folds", "random", "leave-last-out")
#: Names the held-out split (holdout_mask); change it whenever that function's choice changes.
HOLDOUT_SCHEME = "splitmix64(user,movie)-v1"
#: Shortcut flags for the hyper-parameters people change most; any other goes through --param.
PARAM_FLAGS = {"epochs": int, "dim": int, "lr": float, "batch_size": int, "l2": float, "patience": int}


class UsageError(Exception):
    """Bad flags or settings: exit code 2 with the message."""


class Cancelled(BaseException):
    """SIGTERM from the worker (graceful shutdown): unwind so staging folders are cleaned up."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train on MovieLens plus member ratings; publish to BOT_DATA_DIR/models.",
    )
    p.add_argument(
        "--dataset", choices=sorted(DATASETS), help="default: MOVIELENS_DATASET or ml-latest-small"
    )
    p.add_argument(
        "--model",
        default=DEFAULT_FAMILY,
        choices=FAMILIES,
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
    p.add_argument("--force", action="store_true", help="publish even if validation RMSE is worse")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"publish only if val RMSE <= serving version's + this, in stars (default {DEFAULT_TOLERANCE})",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.05, help="MovieLens ratings held out for test metrics"
    )
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="model versions to keep on disk")
    p.add_argument("--max-users", type=int, help="train on the first N MovieLens users only (quick runs)")
    p.add_argument("--no-members", action="store_true", help="ignore the bot's member ratings")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: TensorFlow's choice)")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    p.add_argument("--no-dotenv", action="store_true", help="read settings from the environment only")
    p.add_argument("--evaluate", choices=PROTOCOLS, metavar="PROTOCOL", help=f"one of {', '.join(PROTOCOLS)}")
    p.add_argument("--json", action="store_true", help="with --evaluate: results as JSON on the last line")
    p.add_argument("--progress-json", action="store_true", help="JSON lines on stdout (the worker protocol)")
    p.add_argument("--quiet", action="store_true", help="warnings only on stderr")
    ops = p.add_mutually_exclusive_group()
    ops.add_argument("--list-versions", action="store_true", help="list stored versions and exit")
    ops.add_argument("--promote", metavar="VERSION", help="serve a stored version (e.g. roll back) and exit")
    return p.parse_args(argv)


def _param_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def collect_params(args: argparse.Namespace, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters that differ from the family's defaults, checked against its known keys."""
    params: dict[str, Any] = {
        name: getattr(args, name) for name in PARAM_FLAGS if getattr(args, name) is not None
    }
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = _param_value(value.strip())
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults))
        raise UsageError(
            f"unknown hyper-parameter(s) for --model {args.model}: {', '.join(unknown)} (known: {known})"
        )
    return params


class Reporter:
    """Progress for people (concise lines on stderr) or for the worker (JSON lines on ``out``)."""

    def __init__(self, out: TextIO | None, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self._last = time.monotonic()

    def emit(self, event: dict[str, Any]) -> None:
        if self.out is not None:
            self.out.write(json.dumps(event, allow_nan=False, default=_json_default) + "\n")
            self.out.flush()
            return
        if self.quiet:
            return
        kind = event["event"]
        if kind == "epoch":
            now = time.monotonic()
            parts = [f"epoch {event['epoch']}/{event['epochs']}"]
            parts += [
                f"{k} {event[k]:.4f}" for k in ("loss", "val_loss", "val_rmse") if event.get(k) is not None
            ]
            print("  ".join(parts) + f"  ({now - self._last:.1f}s)", file=sys.stderr, flush=True)
            self._last = now
        elif kind == "start" and "n_ratings" in event:
            print(
                f"training {event['family']} on {event['dataset']}: {event['n_ratings']:,} ratings "
                f"({event['n_member_ratings']:,} from {event['n_members']} members), seed {event['seed']}",
                file=sys.stderr,
                flush=True,
            )
            self._last = time.monotonic()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(value: Any) -> Any:
    """NaN/inf become None so every event is strict JSON."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def member_training_rows(members: pd.DataFrame, movies: pd.DataFrame, scale: Any) -> pd.DataFrame:
    """Members' ratings as extra users (``member:<id>``), dropping movies or stars the dataset lacks."""
    if members.empty:
        return members.assign(user_key=pd.Series([], dtype=object))
    known = members["movie_id"].isin(movies["movie_id"])
    valid = members["rating"].map(lambda s: scale.is_valid(float(s))).astype(bool)
    dropped = int((~(known & valid)).sum())
    if dropped:
        # e.g. ratings kept from a catalog of another dataset: they cannot be trained on here
        log.warning("skipping %d member ratings for movies or stars outside this dataset", dropped)
    kept = members[known & valid]
    return kept.assign(user_key="member:" + kept["user_id"].astype("int64").astype(str))


def holdout_mask(user_ids: np.ndarray, movie_ids: np.ndarray, fraction: float) -> np.ndarray:
    """Rows held out for testing, chosen by a hash of (user, movie) rather than by the seed.

    The same rating is held out in every run, whatever the seed, the members or --max-users, so
    the serving version never trained on the rows a new run is tested on, and both can be scored
    on exactly the same ratings (a paired comparison; see :func:`compare_on_holdout`).
    """
    x = user_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + movie_ids.astype(np.uint64)
    # splitmix64's finaliser: well mixed and the same on every platform and numpy version
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


def build_training_frame(
    data: Any, members: pd.DataFrame, *, max_users: int | None, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MovieLens + member ratings with ``user_key``; and the MovieLens-only held-out rows."""
    ml = data.ratings
    if max_users is not None:
        ml = ml[ml["user_id"].isin(np.sort(ml["user_id"].unique())[:max_users])]
    ml = ml.assign(user_key="ml:" + ml["user_id"].astype(str))
    test = ml.iloc[:0]
    if test_fraction > 0:
        held = holdout_mask(ml["user_id"].to_numpy(), ml["movie_id"].to_numpy(), test_fraction)
        test, ml = ml[held], ml[~held]
    extra = member_training_rows(members, data.movies, data.scale)
    columns = ["user_id", "movie_id", "rating", "timestamp", "user_key"]
    frame = pd.concat(
        [ml[columns].astype({"user_id": "int64"}), extra[columns].astype({"user_id": "int64"})],
        ignore_index=True,
    )
    return frame, test


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


def holdout_metrics(serving: Any, test: pd.DataFrame, global_mean: float) -> dict[str, Any]:
    """RMSE/MAE of the exported (numpy) model on held-out MovieLens ratings, next to the global mean."""
    if test.empty:
        return {"n": 0}
    scored, preds = predict_rows(serving, test)
    if not scored.any():
        return {"n": 0, "skipped": len(test)}
    truth = test["rating"].to_numpy(dtype=np.float64)[scored]
    err, base = preds[scored] - truth, global_mean - truth
    return {
        "n": int(scored.sum()),
        "skipped": int((~scored).sum()),  # users or movies the model never saw in training
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "global_mean_rmse": float(np.sqrt(np.mean(base**2))),
    }


def compare_on_holdout(new: Any, old: Any, test: pd.DataFrame) -> dict[str, Any] | None:
    """Both models' RMSE on the held-out rows both can score: the publish gate's paired test."""
    if test.empty:
        return None
    scored_new, pred_new = predict_rows(new, test)
    scored_old, pred_old = predict_rows(old, test)
    both = scored_new & scored_old
    if both.sum() < 100:  # too few shared rows to say anything (e.g. a different --max-users)
        return None
    truth = test["rating"].to_numpy(dtype=np.float64)[both]
    return {
        "n": int(both.sum()),
        "new_rmse": float(np.sqrt(np.mean((pred_new[both] - truth) ** 2))),
        "old_rmse": float(np.sqrt(np.mean((pred_old[both] - truth) ** 2))),
    }


def _compare_with_current(
    registry: Registry, new: Any, test: pd.DataFrame, dataset: str, fraction: float
) -> dict | None:
    """Score the serving version on this run's held-out rows (see :meth:`Registry.decide`)."""
    from recommender.core.errors import NoModel

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


def _configure_tensorflow(threads: int | None) -> None:
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        # Start the runtime now so these counts are fixed: training's own default can no longer
        # override them (the worker keeps a core free for the bot's event loop this way).
        tf.constant(0.0)


def run_training(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    from recommender.data.movielens import load_from_settings
    from recommender.families import training
    from recommender.persistence.storage import read_member_ratings

    if args.model not in training.SERVABLE_FAMILIES:
        raise UsageError(
            f"--model {args.model} can be evaluated but not served; use --evaluate PROTOCOL, or one of "
            f"{', '.join(training.SERVABLE_FAMILIES)} to publish"
        )
    params = collect_params(args, training.DEFAULT_PARAMS[args.model])
    _configure_tensorflow(args.threads)

    registry = Registry(settings.models_dir)
    version = registry.new_version(args.model)
    data = load_from_settings(settings, progress=reporter.out is None and not args.quiet)
    # Taken before the members' ratings are read: the service treats ratings stored after this
    # moment as not yet learned (it folds them in), so it must never be later than the read.
    started = time.time()
    members = read_member_ratings(settings.db_path) if not args.no_members else pd.DataFrame()
    if members.empty:
        members = pd.DataFrame({"user_id": [], "movie_id": [], "rating": [], "timestamp": []})
    ratings, test = build_training_frame(
        data, members, max_users=args.max_users, test_fraction=args.test_fraction
    )
    is_member = ratings["user_key"].str.startswith("member:")
    n_members = int(ratings.loc[is_member, "user_key"].nunique())
    reporter.emit(
        {
            "event": "start",
            "version": version,
            "dataset": data.name,
            "family": args.model,
            "seed": args.seed,
            "params": params,
            "n_ratings": len(ratings),
            "n_member_ratings": int(is_member.sum()),
            "n_members": n_members,
        }
    )

    def on_epoch(info: dict[str, Any]) -> None:
        reporter.emit(_finite({"event": "epoch", **info}))

    result = training.train_model(
        ratings,
        data.movies,
        scale=data.scale,
        family=args.model,
        params=params,
        seed=args.seed,
        on_epoch=on_epoch,
        version=version,
    )
    if result.serving is None:
        raise RuntimeError(f"training {args.model} returned no serving model")
    # The service folds in ratings made after this moment; without it every member looks untrained.
    result.serving.trained_at = started
    metrics: dict[str, Any] = {
        **result.metrics,
        "version": version,
        "family": args.model,
        "dataset": data.name,
        "seed": args.seed,
        "params": result.params,
        "val_rmse": float(result.val_rmse),
        "test": holdout_metrics(result.serving, test, float(ratings["rating"].mean())),
        "n_ratings": len(ratings),
        "n_member_ratings": int(is_member.sum()),
        "n_members": n_members,
        "max_users": args.max_users,
        "trained_at": started,
        "fit_seconds": float(result.fit_seconds),
    }
    metrics["holdout"] = {"scheme": HOLDOUT_SCHEME, "fraction": args.test_fraction}
    metrics["compared_with"] = _compare_with_current(
        registry, result.serving, test, data.name, args.test_fraction
    )
    metrics = _finite(metrics)

    def write(folder: Path) -> None:
        result.serving.save(folder)
        result.model.save(folder / "model.keras")
        training.plot_loss(result.history, folder / "loss.png", title=f"{version} ({data.name})")
        with (folder / METRICS).open("w", encoding="utf-8") as fh:
            json.dump(metrics, fh, indent=2, sort_keys=True, allow_nan=False, default=_json_default)

    folder = registry.store(version, write)
    decision = registry.decide(metrics, tolerance=args.tolerance, force=args.force)
    if decision.publish:
        registry.set_current(version)
    registry.prune(keep=args.keep)
    log.info(
        "%s %s: %s", "published" if decision.publish else "stored, not published", version, decision.reason
    )
    reporter.emit(
        {
            "event": "done",
            "ok": True,
            "published": decision.publish,
            "version": version,
            "family": args.model,
            "trained_at": started,
            "reason": decision.reason,
            "metrics": metrics,
            "plot": str(folder / "loss.png"),
        }
    )
    if reporter.out is None:
        state = "published" if decision.publish else "NOT published"
        print(f"{version} {state}: {decision.reason}")
        print(f"val RMSE {metrics['val_rmse']:.4f}; loss curve {folder / 'loss.png'}")
    return EXIT_OK if decision.publish else EXIT_NOT_PUBLISHED


def run_evaluate(args: argparse.Namespace, settings: Settings, reporter: Reporter, stdout: TextIO) -> int:
    from recommender.data.movielens import load_from_settings
    from recommender.families import training
    from recommender.pipeline import evaluate

    params = collect_params(args, training.DEFAULT_PARAMS[args.model])
    _configure_tensorflow(args.threads)
    data = load_from_settings(settings, progress=reporter.out is None and not args.quiet)
    reporter.emit({"event": "start", "dataset": data.name, "family": args.model, "protocol": args.evaluate})

    def on_progress(message: str) -> None:
        if reporter.out is not None:
            reporter.emit({"event": "progress", "message": message})
        else:
            log.info("%s", message)

    result = evaluate.run_evaluation(
        data, args.evaluate, args.model, params or None, args.seed, on_progress=on_progress
    )
    if reporter.out is not None:
        reporter.emit(
            {
                "event": "done",
                "ok": True,
                "published": False,
                "version": None,
                "reason": "evaluation only",
                "metrics": _finite(result),
                "plot": None,
            }
        )
        return EXIT_OK
    print(evaluate.format_table(result), file=stdout)
    if args.json:
        print(json.dumps(_finite(result), allow_nan=False, default=_json_default), file=stdout)
    return EXIT_OK


def run_registry_command(args: argparse.Namespace, settings: Settings, stdout: TextIO) -> int:
    """``--list-versions`` / ``--promote VERSION``: no training, no TensorFlow."""
    from recommender.core.errors import NoModel

    registry = Registry(settings.models_dir)
    if args.promote:
        try:
            registry.set_current(args.promote)
        except NoModel as exc:
            detail = str(exc).removeprefix(str(NoModel()).strip()).strip()
            raise UsageError(f"cannot promote {args.promote}: {detail}") from None
        print(f"{args.promote} is now current; the bot picks it up on its next reload", file=stdout)
        return EXIT_OK
    versions = registry.list_versions()
    if not versions:
        print(f"no model versions in {registry.root}", file=stdout)
    for info in versions:
        rmse = info.metrics.get("val_rmse")
        shown = f"val RMSE {rmse:.4f}" if isinstance(rmse, int | float) else "no metrics"
        mark = "*" if info.is_current else " "
        print(f"{mark} {info.version}  {info.metrics.get('dataset', '?'):<16} {shown}", file=stdout)
    return EXIT_OK


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


def _handle_sigterm(signum: int, frame: Any) -> None:
    raise Cancelled(f"stopped by signal {signum}")


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
        return _run(args, reporter, stdout=sys.stdout)


def _run(args: argparse.Namespace, reporter: Reporter, *, stdout: TextIO) -> int:
    def failed(reason: str, code: int) -> int:
        reporter.emit(failure_event(reason))
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
        if args.json and not args.evaluate:
            raise UsageError("--json goes with --evaluate; use --progress-json for training events")
        if not 0 <= args.test_fraction < 0.5:
            raise UsageError("--test-fraction must be in [0, 0.5)")
        if args.tolerance < 0 or not math.isfinite(args.tolerance):
            raise UsageError("--tolerance must be a finite number >= 0")
        if args.max_users is not None and args.max_users < 1:
            raise UsageError("--max-users must be at least 1")
        if args.list_versions or args.promote:
            return run_registry_command(args, settings, stdout)
        if args.evaluate:
            return run_evaluate(args, settings, reporter, stdout)
        return run_training(args, settings, reporter)
    except (UsageError, ConfigError) as exc:
        return failed(f"usage: {exc}", EXIT_USAGE)
    except (Cancelled, KeyboardInterrupt) as exc:
        why = str(exc) or "interrupted"
        log.warning("training cancelled: %s", why)
        return failed(f"cancelled ({why}); the serving model is unchanged", EXIT_FAILED)
    except Exception as exc:
        log.exception("training failed")
        return failed(f"training failed: {type(exc).__name__}: {exc}", EXIT_FAILED)


def _setup_logging(level: str, *, quiet: bool) -> None:
    root = logging.getLogger()
    if root.handlers:  # already configured (an embedding program, or pytest): leave it alone
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel("WARNING" if quiet else level)


def entry() -> int:
    """The process entry point (``python -m recommender.pipeline`` and ``train.py``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise here
    signal.signal(signal.SIGTERM, _handle_sigterm)
    return main()
