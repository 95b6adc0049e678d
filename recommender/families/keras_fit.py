"""Fit machinery shared by the families: TensorFlow setup, early stopping, export with parity check,
the rank-weight choice and the loss plot. TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender.core.types import RatingScale
from recommender.evaluation.metrics import ndcg_at_k
from recommender.families.base import EpochCallback, ExportParityError, Fitted, KerasParams
from recommender.features.encoding import Encoded
from recommender.scoring.linalg import score, top_k
from recommender.scoring.model import ServingModel, fit_content_map

log = logging.getLogger(__name__)

__all__ = [
    "KerasFamily",
    "choose_rank_weight",
    "configure_tensorflow",
    "export_serving",
    "keras_predict",
    "plot_loss",
]

PARITY_TOLERANCE = 1e-4
#: Above this many fit rows, embeddings are updated lazily (only the rows a batch touched) and the
#: batch grows so an epoch is at most MAX_STEPS steps: Keras's Adam updates every row of every
#: table each step, which at ml-32m's size costs more than the batch itself (benchmarks/RESULTS.md).
LARGE_FIT_ROWS = 5_000_000
MAX_STEPS = 2000
#: ... and early stopping there waits one epoch, not ``patience``, and counts an epoch as a gain
#: only when it lowers the validation RMSE by this share: each epoch is a pass over tens of millions
#: of rows, and past the first few they buy a ten-thousandth of RMSE for minutes each (RESULTS.md).
LARGE_PATIENCE = 1
LARGE_MIN_GAIN = 1e-3
RANK_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Threads when the caller names none: the machine (and CI) is small and shared.
DEFAULT_THREADS = 2

_tf_configured = False


def configure_tensorflow(threads: int | None = None) -> None:
    """Fix TensorFlow's thread pools once per process: ``threads`` (default 2) intra-op, 1 inter-op.

    The first call wins (the trainer's ``--threads``, chosen by the worker to keep a core free for
    the bot); the runtime is started at once so nothing later can change the counts.
    """
    global _tf_configured
    if _tf_configured:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads or DEFAULT_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.constant(0.0)
    except RuntimeError:  # the runtime was already initialised by someone else: keep its setting
        log.debug("TensorFlow threading already fixed")
    _tf_configured = True


def keras_predict(model: Any, x: Mapping[str, np.ndarray]) -> np.ndarray:
    """The Keras model's raw outputs as float64, in large batches."""
    return np.asarray(model.predict(dict(x), batch_size=16384, verbose=0), dtype=np.float64)


class KerasFamily:
    """Fit and predict of the families trained with Adam; a subclass adds ``build`` (and export)."""

    name: ClassVar[str] = ""
    servable: ClassVar[bool] = False
    params_type: ClassVar[type[KerasParams]] = KerasParams
    loss: ClassVar[str] = "mse"

    def build(self, params: Any, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        raise NotImplementedError

    def inputs(self, enc: Encoded, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
        return {"user": users.astype(np.int32), "movie": movies.astype(np.int32)}

    def targets(self, enc: Encoded, scale: RatingScale) -> np.ndarray:
        return enc.ratings.astype(np.float32)

    def predict(
        self, model: Any, enc: Encoded, scale: RatingScale, users: np.ndarray, movies: np.ndarray
    ) -> np.ndarray:
        return keras_predict(model, self.inputs(enc, users, movies))[:, 0]

    def fit(
        self, params: Any, enc: Encoded, scale: RatingScale, seed: int, on_epoch: EpochCallback | None
    ) -> Fitted:
        """Adam with early stopping on the validation slice; the best epoch's weights are kept."""
        import keras

        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = self.build(params, enc, scale, seed)
        batch_size, large = params.batch_size, enc.fit.size > LARGE_FIT_ROWS
        if large:
            from recommender.families.lazy_adam import lazy_adam

            batch_size = max(batch_size, -(-enc.fit.size // MAX_STEPS))
            log.info("%d fit rows: lazy Adam, batch %d", enc.fit.size, batch_size)
        optimizer = lazy_adam(float(params.lr)) if large else keras.optimizers.Adam(float(params.lr))
        model.compile(optimizer=optimizer, loss=self.loss)
        y = self.targets(enc, scale)
        # At scale the fit rows' inputs are built a batch at a time: hybrid's per-row movie
        # features alone would be rows x features floats.
        x_fit = (
            _batches(self, enc, y, batch_size, seed)
            if large
            else self.inputs(enc, enc.users[enc.fit], enc.movies[enc.fit])
        )
        x_val = self.inputs(enc, enc.users[enc.val], enc.movies[enc.val])

        def val_rmse() -> float:
            pred = self.predict(model, enc, scale, enc.users[enc.val], enc.movies[enc.val])
            return float(np.sqrt(np.mean((pred - enc.ratings[enc.val]) ** 2)))

        stopping = (min(params.patience, LARGE_PATIENCE), LARGE_MIN_GAIN) if large else (params.patience, 0.0)
        monitor = _epoch_monitor(val_rmse if enc.val.size else None, params, on_epoch, *stopping)
        fit = model.fit(
            x_fit,
            None if large else y[enc.fit],
            validation_data=(x_val, y[enc.val]) if enc.val.size else None,
            batch_size=None if large else batch_size,
            validation_batch_size=batch_size,  # Keras's default is 32 when batch_size is None
            epochs=params.epochs,
            shuffle=not large,
            verbose=0,
            callbacks=[monitor],
        )
        if large:
            x_fit.release()
        history = {
            k: [float(v) for v in vals] for k, vals in fit.history.items() if k in ("loss", "val_loss")
        }
        history["val_rmse"] = list(monitor.val_rmse)
        log.info("Keras fit: %d epochs in %.1fs", len(history.get("loss", [])), time.perf_counter() - started)
        return Fitted(model, history, monitor.best, monitor.best_epoch)


def _batches(family: KerasFamily, enc: Encoded, y: np.ndarray, batch_size: int, seed: int) -> Any:
    """The fit rows as shuffled batches whose inputs are built on demand (a fresh order each epoch)."""
    import keras

    class Batches(keras.utils.PyDataset):
        # the rows come in as arguments, not from the enclosing scope: a closure would keep them
        # alive as long as the class, after release()
        def __init__(self, enc: Encoded, y: np.ndarray) -> None:
            super().__init__()
            self.enc, self.y = enc, y
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(enc.fit)

        def __len__(self) -> int:
            return -(-self.order.size // batch_size)

        def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
            rows = self.order[i * batch_size : (i + 1) * batch_size]
            return family.inputs(self.enc, self.enc.users[rows], self.enc.movies[rows]), self.y[rows]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(self.enc.fit)

        def release(self) -> None:
            """Drop the rows: Keras keeps the dataset reachable after fit (about a gigabyte at
            ml-32m's size with the encoding's arrays, the targets and the order)."""
            self.enc = self.y = self.order = None

    return Batches(enc, y)


def _epoch_monitor(  # type: ignore[no-untyped-def]
    val_rmse: Callable[[], float] | None,
    params: KerasParams,
    on_epoch: EpochCallback | None,
    patience: int,
    min_gain: float,
):
    import keras

    class EpochMonitor(keras.callbacks.Callback):
        """Validation RMSE each epoch, early stopping with best-weight restore, progress hook.

        The best epoch's weights are kept whatever its gain; stopping waits ``patience`` epochs
        without a gain of at least ``min_gain`` (a share of the best RMSE so far).
        """

        def __init__(self) -> None:
            super().__init__()
            self.val_rmse: list[float] = []
            self.best = math.inf
            self.best_epoch = 0
            self.best_weights = None
            self.wait = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            rmse = val_rmse() if val_rmse is not None else float(np.sqrt(logs.get("loss", math.nan)))
            self.val_rmse.append(rmse)
            needed = 1e-5 if math.isinf(self.best) else max(1e-5, min_gain * self.best)
            gained = rmse < self.best - needed
            if rmse < self.best - 1e-5:
                self.best, self.best_epoch = rmse, epoch + 1
                self.best_weights = self.model.get_weights()
            self.wait = 0 if gained else self.wait + 1
            if self.wait >= patience:
                self.model.stop_training = True
            if on_epoch is not None:
                on_epoch(
                    {
                        "epoch": epoch + 1,
                        "epochs": params.epochs,
                        "loss": float(logs.get("loss", math.nan)),
                        "val_loss": float(logs.get("val_loss", math.nan)),
                        "val_rmse": rmse,
                    }
                )

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return EpochMonitor()


def layer_weights(model: Any, name: str) -> np.ndarray:
    """The first weight array of layer ``name`` as float64."""
    return np.asarray(model.get_layer(name).get_weights()[0], dtype=np.float64)


def export_serving(
    family: Any,
    model: Any,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    enc: Encoded,
    scale: RatingScale,
    *,
    content_reg: float,
    fold: tuple[float, float],
    seed: int,
    version: str,
) -> ServingModel:
    """A ServingModel from ``(P, b_u, Q, b_i)``, checked to reproduce ``family.predict`` on a sample.

    ``fold`` is the fold-in ridge ``(reg, bias_reg)`` for members who rate after training.
    """
    P, bu, Q, bi = arrays
    # Content model for movies without an embedding: ridge from genres/year to [q_i, b_i],
    # weighted by how much evidence each training movie's vector rests on.
    content_w = fit_content_map(
        enc.content_matrix, np.hstack([Q, bi[:, None]]), enc.counts.astype(np.float64), content_reg
    )
    serving = ServingModel(
        version=version,
        family=family.name,
        scale=scale,
        global_mean=enc.global_mean,
        user_keys=list(enc.user_keys),
        user_factors=P,
        user_bias=bu,
        movie_ids=enc.movie_ids.copy(),
        item_factors=Q,
        item_bias=bi,
        item_count=enc.counts.astype(np.int64),
        content=enc.content,
        content_weights=content_w,
        reg=float(fold[0]),
        bias_reg=float(fold[1]),
    )
    # Parity: the arrays must reproduce Keras on a sample, or serving would silently drift.
    rng = np.random.default_rng(seed)
    n = min(2000, len(enc.ratings))
    rows = rng.choice(len(enc.ratings), size=n, replace=False)
    su, sm = enc.users[rows], enc.movies[rows]
    keras_out = family.predict(model, enc, scale, su, sm)
    numpy_out = score(serving.global_mean, bu[su], bi[sm], P[su], Q[sm], paired=True)
    diff = float(np.max(np.abs(keras_out - numpy_out))) if n else 0.0
    if not diff < PARITY_TOLERANCE:
        raise ExportParityError(
            f"exported {family.name} arrays differ from Keras by {diff:.2e} (limit {PARITY_TOLERANCE:g})"
        )
    serving.metrics = {"export_max_abs_diff": diff}
    log.info("exported %s: %d users, %d movies, parity max|diff| = %.2e", family.name, len(P), len(Q), diff)
    return serving


def choose_rank_weight(score_rows: Callable[[np.ndarray], np.ndarray], enc: Encoded, k: int = 5) -> float:
    """Pick the popularity-prior weight that maximises NDCG@k on the validation slice.

    Uses the training data only: candidates are the movies a user did not rate in the fit rows,
    relevant are their validation ratings >= 4 (the same rule as the evaluation).
    """
    if enc.val.size == 0:
        return 0.0
    val_u, val_m, val_r = enc.users[enc.val], enc.movies[enc.val], enc.ratings[enc.val]
    relevant_rows = val_r >= 4.0
    users = np.unique(val_u[relevant_rows])
    if users.size == 0:
        return 0.0
    rng = np.random.default_rng(0)
    if users.size > 600:  # a sample is plenty to choose one number, and keeps big runs cheap
        users = np.sort(rng.choice(users, 600, replace=False))
    # the sampled users' fit rows, found without copying or sorting the whole fit slice (tens of
    # millions of rows at scale)
    rows = np.flatnonzero(np.isin(enc.users, users))
    rows = rows[~np.isin(rows, enc.val)]
    row_users = enc.users[rows]
    seen = [enc.movies[rows[row_users == user]] for user in users]
    base = score_rows(users)  # (len(users), I)
    prior = np.log1p(enc.counts.astype(np.float64))
    totals = {}
    for w in RANK_WEIGHTS:
        total = 0.0
        for row, user in enumerate(users):
            s = base[row] + w * prior
            s[seen[row]] = -np.inf
            top = top_k(s, enc.movie_ids, k)
            rel = set(val_m[(val_u == user) & relevant_rows].tolist())
            total += ndcg_at_k(top.tolist(), rel, k)
        totals[w] = total / len(users)
    best = max(RANK_WEIGHTS, key=lambda w: (totals[w], -w))
    log.info("rank weight %.2f (validation NDCG@%d %s)", best, k, {w: round(v, 4) for w, v in totals.items()})
    return float(best)


def plot_loss(history: Mapping[str, Sequence[float]], path: Path, *, title: str = "") -> Path:
    """Training and validation loss per epoch (and validation RMSE) as a PNG, without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for key, label in (
            ("loss", "training loss"),
            ("val_loss", "validation loss"),
            ("val_rmse", "validation RMSE"),
        ):
            values = list(history.get(key, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss / RMSE")
        ax.set_title(title or "training curves")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
