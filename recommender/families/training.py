"""Fit the model families, export them to numpy for serving, plot the loss curves.

mf, mlp, hybrid and classifier are Keras models trained here with Adam. bpmf is different: its
factors are Gibbs-sampled in numpy (``recommender/bpmf.py``) and only *stored* in a Keras mf model,
so that its export, parity check, saved ``model.keras`` and serving are exactly mf's.

Runs in the trainer process (train.py / the retrain worker), never in the bot: it imports TensorFlow.
Early stopping watches a validation slice carved from the *training* ratings only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from recommender.core.types import RatingScale, ml_key
from recommender.families.als import als_refine
from recommender.features.encoding import Encoded, encode
from recommender.scoring.model import ServingModel, fit_content_map

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PARAMS",
    "FAMILIES",
    "SERVABLE_FAMILIES",
    "ExportParityError",
    "KerasRecommender",
    "TrainResult",
    "plot_loss",
    "train_model",
]

# bpmf is not a Keras-trained family: its factors are sampled in numpy (recommender/bpmf.py) and only
# *stored* in a Keras mf model, so export, parity check and serving are the same as for mf.
FAMILIES = ("mf", "mlp", "hybrid", "classifier", "bpmf")
SERVABLE_FAMILIES = ("mf", "hybrid", "bpmf")
PARITY_TOLERANCE = 1e-4
RANK_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

_COMMON: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 2048,
    "lr": 0.005,
    "patience": 3,
    "val_fraction": 0.05,
    "content_reg": 1.0,
    "rank_weight": "auto",  # "auto": chosen on the validation slice by NDCG@5
}
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # l2 is the per-rating penalty (see models._embedding); 0.12/0.05 came from a sweep on u1 only.
    "mf": {**_COMMON, "dim": 48, "l2": 0.12, "bias_l2": 0.05, "members": 1, "als_iters": 0},
    # fold_reg/fold_bias_reg: the fold-in ridge for members who rated after training. Reusing the
    # training penalties (0.12/0.05) folded in a member from 5-10 ratings worse than popularity
    # (RMSE 1.06 vs 1.02); 2.0/1.0 won on validation users (bench_foldin_reg --family hybrid: mean
    # RMSE over 5/10/20 ratings 1.083 -> 0.988, NDCG@5 up at every n).
    "hybrid": {
        **_COMMON,
        "dim": 48,
        "l2": 0.12,
        "bias_l2": 0.05,
        "feature_l2": 0.005,
        "variant": "full",
        "fold_reg": 2.0,
        "fold_bias_reg": 1.0,
    },
    "mlp": {**_COMMON, "dim": 32, "l2": 0.02, "hidden": "64,32", "dropout": 0.2, "lr": 0.002},
    "classifier": {**_COMMON, "dim": 32, "l2": 0.02, "hidden": "64,32", "dropout": 0.2, "lr": 0.002},
    # Gibbs sampling has no epochs/lr/l2: priors are learned. sweeps/burn/sampler_dim/rank from the
    # research recipe (chosen on u1's validation slice); fold_reg/fold_bias_reg are only the fold-in
    # ridge strengths for members who rated after training, chosen on validation users disjoint from
    # bench_coldstart's test users (benchmarks/bench_foldin_reg.py; RESULTS.md).
    "bpmf": {
        "val_fraction": 0.05,
        "content_reg": 1.0,
        "rank_weight": "auto",
        "sweeps": 120,
        "burn": 30,
        "sampler_dim": 10,
        "rank": 32,
        "beta0": 2.0,
        "fold_reg": 0.5,
        "fold_bias_reg": 0.3,
    },
}


class ExportParityError(RuntimeError):
    """The exported numpy arrays do not reproduce the Keras model's predictions."""


@dataclass
class TrainResult:
    model: Any  # keras.Model
    family: str
    params: dict
    seed: int
    history: dict[str, list[float]]
    serving: ServingModel | None
    val_rmse: float
    metrics: dict
    fit_seconds: float
    encoded: Encoded | None = field(default=None, repr=False)


def _params(family: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")
    merged = dict(DEFAULT_PARAMS[family])
    for key, value in (params or {}).items():
        if key not in merged:
            raise ValueError(f"{family} has no parameter {key!r}; known: {', '.join(sorted(merged))}")
        if value is not None:
            merged[key] = value
    return merged


def _hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(int(x) for x in value.split(",") if x.strip())
    return tuple(int(x) for x in value)


# --- TensorFlow ---------------------------------------------------------------------------------

_tf_configured = False


def _configure_tf() -> None:
    """Two threads: the machine (and CI) is small and shared; more threads only add contention."""
    global _tf_configured
    if _tf_configured:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime was already initialised by someone else: keep its setting
        log.debug("TensorFlow threading already fixed")
    _tf_configured = True


def _build(family: str, p: dict[str, Any], enc: Encoded, scale: RatingScale, seed: int):  # type: ignore[no-untyped-def]
    from recommender.families import layers as models

    nu, ni = len(enc.user_keys), len(enc.movie_ids)
    if family == "mf":
        return models.build_mf(
            nu,
            ni,
            global_mean=enc.global_mean,
            dim=int(p["dim"]),
            l2=p["l2"],
            bias_l2=p["bias_l2"],
            members=int(p["members"]),
            seed=seed,
        )
    if family == "hybrid":
        return models.build_hybrid(
            nu,
            ni,
            enc.hybrid_features.shape[1],
            global_mean=enc.global_mean,
            dim=int(p["dim"]),
            l2=p["l2"],
            bias_l2=p["bias_l2"],
            feature_l2=p["feature_l2"],
            variant=str(p["variant"]),
            seed=seed,
        )
    if family == "mlp":
        return models.build_mlp(
            nu,
            ni,
            global_mean=enc.global_mean,
            dim=int(p["dim"]),
            l2=p["l2"],
            hidden=_hidden(p["hidden"]),
            dropout=p["dropout"],
            seed=seed,
        )
    return models.build_classifier(
        nu,
        ni,
        len(scale.classes),
        dim=int(p["dim"]),
        l2=p["l2"],
        hidden=_hidden(p["hidden"]),
        dropout=p["dropout"],
        seed=seed,
    )


def _inputs(family: str, enc: Encoded, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
    x = {"user": users.astype(np.int32), "movie": movies.astype(np.int32)}
    if family == "hybrid":
        x["features"] = enc.hybrid_features[movies]
    return x


def _keras_predict(model, family: str, scale: RatingScale, x: dict[str, np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Unclipped predicted ratings (the expected rating for the classifier)."""
    out = np.asarray(model.predict(x, batch_size=16384, verbose=0), dtype=np.float64)
    if family == "classifier":
        return out @ np.asarray(scale.classes, dtype=np.float64)
    return out[:, 0]


def _make_monitor(model, family, scale, enc, x_val, y_val, epochs, patience, on_epoch):  # type: ignore[no-untyped-def]
    import keras

    class EpochMonitor(keras.callbacks.Callback):
        """Validation RMSE each epoch, early stopping with best-weight restore, progress hook."""

        def __init__(self) -> None:
            super().__init__()
            self.val_rmse: list[float] = []
            self.best = math.inf
            self.best_epoch = 0
            self.best_weights = None
            self.wait = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            if len(y_val):
                rmse = float(np.sqrt(np.mean((_keras_predict(model, family, scale, x_val) - y_val) ** 2)))
            else:
                rmse = float(np.sqrt(logs.get("loss", math.nan)))
            self.val_rmse.append(rmse)
            if rmse < self.best - 1e-5:
                self.best, self.best_epoch, self.wait = rmse, epoch + 1, 0
                self.best_weights = model.get_weights()
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True  # the model being fitted (maybe the members' view)
            if on_epoch is not None:
                on_epoch(
                    {
                        "epoch": epoch + 1,
                        "epochs": epochs,
                        "loss": float(logs.get("loss", math.nan)),
                        "val_loss": float(logs.get("val_loss", math.nan)),
                        "val_rmse": rmse,
                    }
                )

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                model.set_weights(self.best_weights)

    return EpochMonitor()


# --- export -------------------------------------------------------------------------------------


def _weights(model, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(model.get_layer(name).get_weights()[0], dtype=np.float64)


def _export_arrays(model, family: str, p: dict[str, Any], enc: Encoded) -> tuple[np.ndarray, ...]:  # type: ignore[no-untyped-def]
    """``(P, b_u, Q, b_i)`` such that ``mu + b_u + b_i + P_u . Q_i`` is the model's output."""
    nu, _ni, dim = len(enc.user_keys), len(enc.movie_ids), int(p.get("dim", p.get("rank", 0)))
    names = {layer.name for layer in model.layers}
    P = _weights(model, "user_embedding") if "user_embedding" in names else np.zeros((nu, dim))
    bu = _weights(model, "user_bias")[:, 0] if "user_bias" in names else np.zeros(nu)
    if family in ("mf", "bpmf"):
        k = int(p.get("members", 1))
        if k == 1:
            return P, bu, _weights(model, "movie_embedding"), _weights(model, "movie_bias")[:, 0]
        # mean of K members = one MF with concatenated factors (user side / K) and averaged biases
        sfx = [f"_{i}" for i in range(k)]
        P = np.hstack([_weights(model, f"user_embedding{x}") for x in sfx]) / k
        Q = np.hstack([_weights(model, f"movie_embedding{x}") for x in sfx])
        bu = np.mean([_weights(model, f"user_bias{x}")[:, 0] for x in sfx], axis=0)
        bi = np.mean([_weights(model, f"movie_bias{x}")[:, 0] for x in sfx], axis=0)
        return P, bu, Q, bi
    f = enc.hybrid_features.astype(np.float64)
    # "no_user" has no dot product at all, so Keras prunes the movie factors: they are zero here.
    Q = f @ _weights(model, "feature_factors") if "feature_factors" in names else np.zeros((len(f), dim))
    bi = (f @ _weights(model, "feature_bias"))[:, 0]
    if "movie_embedding" in names:
        Q = Q + _weights(model, "movie_embedding")
    if "movie_bias" in names:
        bi = bi + _weights(model, "movie_bias")[:, 0]
    return P, bu, Q, bi


def _export(
    model, family: str, p: dict[str, Any], enc: Encoded, scale: RatingScale, seed: int, version: str
) -> tuple[ServingModel, float]:  # type: ignore[no-untyped-def]
    P, bu, Q, bi = _export_arrays(model, family, p, enc)
    # Content model for movies without an embedding: ridge from genres/year to [q_i, b_i],
    # weighted by how much evidence each training movie's vector rests on.
    targets = np.hstack([Q, bi[:, None]])
    content_w = fit_content_map(
        enc.content_matrix, targets, enc.counts.astype(np.float64), float(p["content_reg"])
    )
    serving = ServingModel(
        version=version,
        family=family,
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
        reg=float(p.get("fold_reg", p.get("l2", 0.1))),
        bias_reg=float(p.get("fold_bias_reg", p.get("bias_l2", 0.01))),
    )
    # Parity: the arrays must reproduce Keras on a sample, or serving would silently drift.
    rng = np.random.default_rng(seed)
    n = min(2000, len(enc.ratings))
    rows = rng.choice(len(enc.ratings), size=n, replace=False)
    su, sm = enc.users[rows], enc.movies[rows]
    keras_out = _keras_predict(model, family, scale, _inputs(family, enc, su, sm))
    numpy_out = serving.global_mean + bu[su] + bi[sm] + np.einsum("ij,ij->i", P[su], Q[sm])
    diff = float(np.max(np.abs(keras_out - numpy_out))) if n else 0.0
    if not diff < PARITY_TOLERANCE:
        raise ExportParityError(
            f"exported {family} arrays differ from Keras by {diff:.2e} (limit {PARITY_TOLERANCE:g})"
        )
    log.info("exported %s: %d users, %d movies, parity max|diff| = %.2e", family, len(P), len(Q), diff)
    return serving, diff


def _choose_rank_weight(score_rows: Callable[[np.ndarray], np.ndarray], enc: Encoded, k: int = 5) -> float:
    """Pick the popularity-prior weight that maximises NDCG@k on the validation slice.

    Uses the training data only: candidates are the movies a user did not rate in the fit rows,
    relevant are their validation ratings >= 4 (the same rule as the evaluation).
    """
    from recommender.evaluation.metrics import ndcg_at_k

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
    fit_u, fit_m = enc.users[enc.fit], enc.movies[enc.fit]
    order = np.argsort(fit_u, kind="stable")
    starts = np.searchsorted(fit_u[order], users)
    ends = np.searchsorted(fit_u[order], users, side="right")
    base = score_rows(users)  # (len(users), I)
    prior = np.log1p(enc.counts.astype(np.float64))
    totals = {}
    for w in RANK_WEIGHTS:
        scores = base + w * prior
        total = 0.0
        for row, user in enumerate(users):
            s = scores[row].copy()
            s[fit_m[order[starts[row] : ends[row]]]] = -np.inf
            top = np.argpartition(-s, k)[:k]
            top = top[np.argsort(-s[top], kind="stable")]
            rel = set(val_m[(val_u == user) & relevant_rows].tolist())
            total += ndcg_at_k(top.tolist(), rel, k)
        totals[w] = total / len(users)
    best = max(RANK_WEIGHTS, key=lambda w: (totals[w], -w))
    log.info("rank weight %.2f (validation NDCG@%d %s)", best, k, {w: round(v, 4) for w, v in totals.items()})
    return float(best)


def _fit_keras(family: str, p: dict[str, Any], enc: Encoded, scale: RatingScale, seed: int, on_epoch):  # type: ignore[no-untyped-def]
    """Fit a Keras family with early stopping; ``(model, history, best val RMSE, best epoch)``."""
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = _build(family, p, enc, scale, seed)
    if family == "classifier":
        classes = np.asarray(scale.classes)
        y = np.abs(enc.ratings[:, None] - classes[None, :]).argmin(axis=1).astype(np.int32)
        loss = "sparse_categorical_crossentropy"
    else:
        y = enc.ratings.astype(np.float32)
        loss = "mse"
    from recommender.families.layers import member_outputs

    fitted = member_outputs(model) if family == "mf" else model  # ensembles fit every member's own loss
    if fitted is not model:
        y = np.repeat(y[:, None], int(p["members"]), axis=1)
    fitted.compile(optimizer=keras.optimizers.Adam(float(p["lr"])), loss=loss)
    x_fit = _inputs(family, enc, enc.users[enc.fit], enc.movies[enc.fit])
    x_val = _inputs(family, enc, enc.users[enc.val], enc.movies[enc.val])
    epochs = int(p["epochs"])
    monitor = _make_monitor(
        model, family, scale, enc, x_val, enc.ratings[enc.val], epochs, int(p["patience"]), on_epoch
    )
    fit = fitted.fit(
        x_fit,
        y[enc.fit],
        validation_data=(x_val, y[enc.val]) if enc.val.size else None,
        batch_size=int(p["batch_size"]),
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[monitor],
    )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items() if k in ("loss", "val_loss")}
    history["val_rmse"] = list(monitor.val_rmse)
    val_rmse = monitor.best
    log.info("Keras fit: %d epochs in %.1fs", len(history.get("loss", [])), time.perf_counter() - started)
    if family == "mf" and int(p["als_iters"]) > 0 and int(p["members"]) == 1:

        def report(it: int, rmse: float) -> None:
            log.debug("ALS sweep %d: val RMSE %.4f", it, rmse)

        history["als_val_rmse"] = als_refine(model, enc, p, report)
        val_rmse = min([val_rmse, *history["als_val_rmse"]])
    return model, history, val_rmse, monitor.best_epoch


def _fit_bpmf(p: dict[str, Any], enc: Encoded, scale: RatingScale, seed: int, on_epoch):  # type: ignore[no-untyped-def]
    """Gibbs-sample BPMF in numpy, then store the averaged factors in a Keras ``mf`` container.

    The container makes the export, the parity check and the saved ``model.keras`` the same as mf's;
    nothing is trained in Keras. History is per sweep; val RMSE is the running average's.
    """
    from recommender.families import layers as models
    from recommender.families.bpmf import sample_bpmf

    fit, val = enc.fit, enc.val
    res = sample_bpmf(
        enc.users[fit],
        enc.movies[fit],
        enc.ratings[fit],
        len(enc.user_keys),
        len(enc.movie_ids),
        global_mean=enc.global_mean,
        sweeps=int(p["sweeps"]),
        burn=int(p["burn"]),
        dim=int(p["sampler_dim"]),
        rank=int(p["rank"]),
        beta0=float(p["beta0"]),
        seed=seed,
        clip=(scale.minimum, scale.maximum),
        val=(enc.users[val], enc.movies[val], enc.ratings[val]) if val.size else None,
        on_sweep=on_epoch,
    )
    model = models.build_mf(
        len(enc.user_keys),
        len(enc.movie_ids),
        global_mean=enc.global_mean,
        dim=int(p["rank"]),
        l2=0.0,
        bias_l2=0.0,
    )
    for name, values in (
        ("user_embedding", res.user_factors),
        ("movie_embedding", res.item_factors),
        ("user_bias", res.user_bias[:, None]),
        ("movie_bias", res.item_bias[:, None]),
    ):
        model.get_layer(name).set_weights([values.astype(np.float32)])
    val_trace = res.history["val_rmse"]
    return model, res.history, (val_trace[-1] if val_trace else math.nan), int(p["sweeps"])


# --- public API ---------------------------------------------------------------------------------


def train_model(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    *,
    scale: RatingScale,
    family: str = "mf",
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
    version: str = "",
) -> TrainResult:
    """Fit one family, early-stopped on a validation slice of ``ratings``; export if servable."""
    called_at = time.time()  # the ratings given are at least this fresh: the default trained_at
    p = _params(family, params)
    _configure_tf()
    enc = encode(ratings, movies, float(p["val_fraction"]), seed)
    started = time.perf_counter()
    if family == "bpmf":
        model, history, val_rmse, best_epoch = _fit_bpmf(p, enc, scale, seed, on_epoch)
    else:
        model, history, val_rmse, best_epoch = _fit_keras(family, p, enc, scale, seed, on_epoch)
    fit_seconds = time.perf_counter() - started

    serving, diff = None, None
    if family in SERVABLE_FAMILIES:
        serving, diff = _export(model, family, p, enc, scale, seed, version)
    x_val = _inputs(family, enc, enc.users[enc.val], enc.movies[enc.val])
    val_pred = _keras_predict(model, family, scale, x_val) if enc.val.size else np.zeros(0)
    val_err = np.clip(val_pred, scale.minimum, scale.maximum) - enc.ratings[enc.val]
    result = TrainResult(
        model=model,
        family=family,
        params=p,
        seed=seed,
        history=history,
        serving=serving,
        val_rmse=float(np.sqrt(np.mean(val_err**2))) if val_err.size else float(val_rmse),
        metrics={},
        fit_seconds=fit_seconds,
        encoded=enc,
    )
    rank_weight = p["rank_weight"]
    if rank_weight == "auto":
        rank_weight = _choose_rank_weight(_row_scorer(result, scale), enc)
    result.params["rank_weight_chosen"] = float(rank_weight)
    if serving is not None:
        serving.rank_weight = float(rank_weight)
        serving.__post_init__()  # recompute the cached ranking prior
    result.metrics = {
        "val_rmse": result.val_rmse,
        "val_mae": float(np.mean(np.abs(val_err))) if val_err.size else math.nan,
        "n_ratings": len(enc.ratings),
        "n_users": len(enc.user_keys),
        "n_movies": len(enc.movie_ids),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": best_epoch,
        "export_max_abs_diff": diff,
        "rank_weight": float(rank_weight),
        "fit_seconds": fit_seconds,
    }
    if serving is not None:
        serving.metrics = dict(result.metrics)
        serving.trained_at = called_at  # train.py may overwrite it with the time it read the ratings
    log.info("trained %s in %.1fs: val RMSE %.4f", family, fit_seconds, result.val_rmse)
    return result


def _row_scorer(result: TrainResult, scale: RatingScale) -> Callable[[np.ndarray], np.ndarray]:
    """Unclipped predicted ratings of dense users x every indexed movie."""
    enc = result.encoded
    assert enc is not None
    if result.serving is not None:
        s = result.serving
        return lambda users: (
            s.global_mean
            + s.user_bias[users, None]
            + s.item_bias[None, :]
            + s.user_factors[users] @ s.item_factors.T
        )
    ni = len(enc.movie_ids)

    def score(users: np.ndarray) -> np.ndarray:
        uu = np.repeat(users, ni)
        mm = np.tile(np.arange(ni), len(users))
        return _keras_predict(
            result.model, result.family, scale, _inputs(result.family, enc, uu, mm)
        ).reshape(len(users), ni)

    return score


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
        als = list(history.get("als_val_rmse", []))
        if als:
            start = len(history.get("val_rmse", []))
            ax.plot(
                range(start + 1, start + len(als) + 1),
                als,
                marker="s",
                markersize=3,
                label="validation RMSE (ALS sweeps)",
            )
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


class KerasRecommender:
    """The tiny algorithm contract (fit / predict / recommend) over MovieLens user ids."""

    def __init__(
        self,
        family: str = "mf",
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        scale: RatingScale | None = None,
    ) -> None:
        self.family = family
        self.params = dict(params or {})
        self.seed = seed
        self.scale = scale or RatingScale(1.0, 5.0, 1.0)
        self.result: TrainResult | None = None
        self._scores: np.ndarray | None = None

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Self:
        self.result = train_model(
            ratings, movies, scale=self.scale, family=self.family, params=self.params, seed=self.seed
        )
        self._scores = None
        return self

    def _need(self) -> TrainResult:
        if self.result is None:
            raise RuntimeError("call fit() first")
        return self.result

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        """Clipped predictions; an unknown user or movie falls back to the training mean."""
        res = self._need()
        enc = res.encoded
        assert enc is not None
        ui, mi = enc.user_index, enc.movie_index
        u = np.fromiter((ui.get(ml_key(x), -1) for x in user_ids), dtype=np.int64, count=len(user_ids))
        m = np.fromiter((mi.get(int(x), -1) for x in movie_ids), dtype=np.int64, count=len(movie_ids))
        out = np.full(len(u), enc.global_mean)
        ok = (u >= 0) & (m >= 0)
        if ok.any():
            out[ok] = _keras_predict(
                res.model, res.family, self.scale, _inputs(res.family, enc, u[ok], m[ok])
            )
        return np.clip(out, self.scale.minimum, self.scale.maximum)

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(movie_ids, scores)`` of the served ranking for a known user, else None."""
        res = self._need()
        enc = res.encoded
        assert enc is not None
        if res.serving is not None:
            user = res.serving.user_vector(ml_key(user_id))
            return None if user is None else (res.serving.movie_ids, res.serving.rank_scores(user))
        u = enc.user_index.get(ml_key(user_id))
        if u is None:
            return None
        if self._scores is None:  # evaluate-only families: score the whole matrix once
            scorer = _row_scorer(res, self.scale)
            all_users = np.arange(len(enc.user_keys))
            self._scores = np.vstack(
                [scorer(chunk) for chunk in np.array_split(all_users, max(1, len(all_users) // 256))]
            )
        prior = float(res.params["rank_weight_chosen"]) * np.log1p(enc.counts.astype(np.float64))
        return enc.movie_ids, self._scores[u] + prior

    def recommend(self, user_id: int, k: int, exclude: Collection[int] = ()) -> list[int]:
        res = self._need()
        if res.serving is not None:
            user = res.serving.user_vector(ml_key(user_id))
            if user is not None:
                return [m for m, _ in res.serving.recommend(user, k, exclude)]
        ranked = self.rank_scores(user_id)
        if ranked is None:
            return []
        ids, scores = ranked
        scores = scores.copy()
        scores[np.isin(ids, np.fromiter(exclude, dtype=np.int64))] = -np.inf
        order = np.lexsort((ids, -scores))[:k]
        return [int(ids[i]) for i in order if np.isfinite(scores[i])]
