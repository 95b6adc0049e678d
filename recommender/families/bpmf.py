"""Bayesian probabilistic matrix factorisation (Salakhutdinov & Mnih 2008) by Gibbs sampling, numpy only.

Each user row is ``x_u = [p_u, b_u]`` and each movie row ``y_i = [q_i, b_i]`` (the bias is one more
sampled coordinate), so a rating is ``mu + b_u + b_i + p_u . q_i``. Both sides get Normal-Wishart
hyper-priors (``mu0 = 0``, ``beta0``, ``W0 = I``, ``nu0 = dim + 1``); the noise precision ``alpha`` is
resampled every sweep. The model served is the average of the samples kept after burn-in, which is
itself one wide biased MF (concatenated factors, user side divided by the number of samples, averaged
biases); :func:`compress` turns it into a rank-``k`` MF that fits in ``layers.build_mf(dim=k)``.

The ``bpmf`` family (:class:`BPMF`) stores that MF in a Keras mf model, so its export, parity check,
saved ``model.keras`` and serving are exactly mf's; nothing is trained in Keras.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recommender.core.types import RatingScale
from recommender.families.base import EpochCallback, FamilyParams, Fitted
from recommender.families.keras_fit import export_serving, keras_predict
from recommender.families.mf import factor_arrays
from recommender.features.encoding import Encoded
from recommender.scoring.linalg import score
from recommender.scoring.model import ServingModel

log = logging.getLogger(__name__)

__all__ = ["BPMF", "BPMFParams", "BPMFResult", "compress", "sample_bpmf"]

#: rows per batched Cholesky call: bounds the (rows, d, d) temporaries on big catalogues
_BATCH_ROWS = 4096


@dataclass
class BPMFResult:
    """The averaged model as ``mu + b_u + b_i + P_u . Q_i`` plus the per-sweep trace."""

    user_factors: np.ndarray  # (U, k)
    user_bias: np.ndarray  # (U,)
    item_factors: np.ndarray  # (I, k)
    item_bias: np.ndarray  # (I,)
    alpha: float  # last sampled noise precision (1 / noise variance)
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def _sample_hyper(x: np.ndarray, rng: np.random.Generator, beta0: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(mu, Lambda)`` from the Normal-Wishart posterior given the rows ``x`` (mu0 = 0, W0 = I)."""
    n, d = x.shape
    xbar = x.mean(axis=0)
    centred = x - xbar
    beta_n, nu_n = beta0 + n, d + n  # nu0 = d
    w_inv = np.eye(d) + centred.T @ centred + (beta0 * n / beta_n) * np.outer(xbar, xbar)
    w = np.linalg.inv(w_inv)
    chol = np.linalg.cholesky((w + w.T) / 2)
    # Bartlett decomposition: Lambda = L A A^T L^T ~ Wishart(W, nu_n)
    a = np.zeros((d, d))
    a[np.tril_indices(d, -1)] = rng.standard_normal(d * (d - 1) // 2)
    a[np.diag_indices(d)] = np.sqrt(rng.chisquare(nu_n - np.arange(d)))
    la = chol @ a
    lam = la @ la.T
    cov = np.linalg.inv(beta_n * lam)
    mu = rng.multivariate_normal(n * xbar / beta_n, (cov + cov.T) / 2)
    return mu, lam


@dataclass
class _Side:
    """The ratings grouped by one side's owner (user or movie), sorted once for every sweep."""

    owner: np.ndarray  # owner index of each rating, in sorted order
    other: np.ndarray  # the other side's index of each rating, same order
    ratings: np.ndarray  # centred rating (r - mu), same order
    n: int

    @classmethod
    def of(cls, owner: np.ndarray, other: np.ndarray, centred: np.ndarray, n: int) -> _Side:
        order = np.argsort(owner, kind="stable")
        return cls(owner[order], other[order], centred[order], n)


def _sample_rows(
    side: _Side,
    other_rows: np.ndarray,
    mu: np.ndarray,
    lam: np.ndarray,
    alpha: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw every row of one side from its Gaussian conditional, in batched solves.

    Row ``x = [f, b]`` with design ``[f_other, 1]`` and target ``r - mu - b_other``:
    precision ``Lambda + alpha * sum o o^T``, mean ``prec^-1 (Lambda mu + alpha * sum o t)``.
    """
    d = lam.shape[0]
    design = np.hstack([other_rows[:, :-1], np.ones((len(other_rows), 1))])[side.other]
    target = side.ratings - other_rows[side.other, -1]
    gram = np.zeros((side.n, d, d))
    rhs = np.zeros((side.n, d))
    # Per-owner sums through bincount: memory stays O(ratings), whatever the largest row.
    for a in range(d):
        rhs[:, a] = np.bincount(side.owner, weights=design[:, a] * target, minlength=side.n)
        for b in range(a, d):
            gram[:, a, b] = np.bincount(side.owner, weights=design[:, a] * design[:, b], minlength=side.n)
            gram[:, b, a] = gram[:, a, b]
    prec = lam[None] + alpha * gram
    rhs = (lam @ mu)[None] + alpha * rhs
    noise = rng.standard_normal((side.n, d, 1))
    out = np.empty((side.n, d))
    for lo in range(0, side.n, _BATCH_ROWS):
        hi = min(lo + _BATCH_ROWS, side.n)
        chol = np.linalg.cholesky(prec[lo:hi])
        mean = np.linalg.solve(prec[lo:hi], rhs[lo:hi, :, None])[..., 0]
        # mean + C^-T z has covariance (C C^T)^-1 = prec^-1
        out[lo:hi] = mean + np.linalg.solve(np.swapaxes(chol, 1, 2), noise[lo:hi])[..., 0]
    return out


def _predict(x: np.ndarray, y: np.ndarray, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
    """Centred prediction ``b_u + b_i + p_u . q_i`` (add the global mean outside)."""
    return score(0.0, x[users, -1], y[movies, -1], x[users, :-1], y[movies, :-1], paired=True)


def sample_bpmf(
    users: np.ndarray,
    movies: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_movies: int,
    *,
    global_mean: float,
    sweeps: int = 120,
    burn: int = 30,
    dim: int = 10,
    rank: int = 32,
    beta0: float = 2.0,
    alpha0: float = 2.0,
    seed: int = 0,
    clip: tuple[float, float] = (-np.inf, np.inf),
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    on_sweep: Callable[[dict], None] | None = None,
) -> BPMFResult:
    """Run the Gibbs sampler on dense-indexed ratings and return the compressed posterior mean.

    ``val`` (users, movies, ratings) is only watched, never fitted: each sweep reports the RMSE of
    the running average of the kept samples (of the current sample during burn-in).
    ``on_sweep`` gets ``{"epoch", "epochs", "loss", "val_loss", "val_rmse"}`` after each sweep.
    The same ``seed`` gives the same result.
    """
    if not 0 <= burn < sweeps:
        raise ValueError(f"need 0 <= burn < sweeps, got burn={burn}, sweeps={sweeps}")
    rng = np.random.default_rng(seed)
    centred = np.asarray(ratings, dtype=np.float64) - global_mean
    by_user = _Side.of(users, movies, centred, n_users)
    by_movie = _Side.of(movies, users, centred, n_movies)
    x = np.hstack([rng.standard_normal((n_users, dim)) * 0.1, np.zeros((n_users, 1))])
    y = np.hstack([rng.standard_normal((n_movies, dim)) * 0.1, np.zeros((n_movies, 1))])
    alpha = alpha0
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_rmse": []} if val else {"loss": []}
    val_sum = np.zeros(len(val[2])) if val is not None else None
    started = time.perf_counter()
    for sweep in range(sweeps):
        mu_u, lam_u = _sample_hyper(x, rng, beta0)
        x = _sample_rows(by_user, y, mu_u, lam_u, alpha, rng)
        mu_i, lam_i = _sample_hyper(y, rng, beta0)
        y = _sample_rows(by_movie, x, mu_i, lam_i, alpha, rng)
        residual = centred - _predict(x, y, users, movies)
        sse = float(residual @ residual)
        # conjugate Gamma(1, 1) prior on the noise precision
        alpha = float(rng.gamma(1.0 + len(centred) / 2, 1.0 / (1.0 + sse / 2)))
        if sweep >= burn:
            kept.append((x.copy(), y.copy()))
        event = {"epoch": sweep + 1, "epochs": sweeps, "loss": sse / max(len(centred), 1)}
        if val is not None and val_sum is not None and len(val[2]):
            pred = global_mean + _predict(x, y, val[0], val[1])
            if sweep >= burn:
                val_sum += pred
                pred = val_sum / len(kept)
            mse = float(np.mean((np.clip(pred, *clip) - val[2]) ** 2))
            event.update(val_loss=mse, val_rmse=float(np.sqrt(mse)))
        else:
            event.update(val_loss=float("nan"), val_rmse=float("nan"))
        for key in history:
            history[key].append(float(event[key]))
        if on_sweep is not None:
            on_sweep(event)
    seconds = time.perf_counter() - started
    P, bu, Q, bi = compress(kept, rank)
    log.info("BPMF: %d sweeps (%d kept) in %.1fs, alpha %.3f", sweeps, len(kept), seconds, alpha)
    return BPMFResult(P, bu, Q, bi, alpha, history, seconds)


def compress(kept: list[tuple[np.ndarray, np.ndarray]], rank: int) -> tuple[np.ndarray, ...]:
    """``(P, b_u, Q, b_i)`` of rank ``rank`` closest to the mean of the kept biased MFs.

    The mean of S samples ``(X_s, Y_s)`` is ``[X_1..X_S]/S . [Y_1..Y_S]^T`` (an MF of width S*dim).
    Thin QR of both sides and an SVD of the small ``R_p R_q^T`` give its best rank-k approximation
    (Eckart-Young) without ever forming the users x movies matrix; it is exact when the mean's rank
    is <= k. Fewer available components than ``rank`` are padded with zero columns.
    """
    s = len(kept)
    bu = np.mean([x[:, -1] for x, _ in kept], axis=0)
    bi = np.mean([y[:, -1] for _, y in kept], axis=0)
    wide_p = np.hstack([x[:, :-1] for x, _ in kept]) / s
    wide_q = np.hstack([y[:, :-1] for _, y in kept])
    up, rp = np.linalg.qr(wide_p)
    uq, rq = np.linalg.qr(wide_q)
    a, sv, bt = np.linalg.svd(rp @ rq.T, full_matrices=False)
    k = min(rank, len(sv))
    root = np.sqrt(sv[:k])
    P = np.zeros((len(wide_p), rank))
    Q = np.zeros((len(wide_q), rank))
    # split each singular value evenly between the sides so neither side's scale dominates
    P[:, :k] = up @ (a[:, :k] * root)
    Q[:, :k] = uq @ (bt[:k].T * root)
    return P, bu, Q, bi


@dataclass(frozen=True)
class BPMFParams(FamilyParams):
    """Gibbs sampling has no epochs, learning rate or penalties: the priors are learned."""

    FAMILY: ClassVar[str] = "bpmf"

    sweeps: int = 120
    burn: int = 30
    #: factors sampled per side, and the rank the kept samples' average is compressed to
    sampler_dim: int = 10
    rank: int = 32
    beta0: float = 2.0
    # The fold-in ridge for members who rated after training, chosen on validation users disjoint
    # from bench_coldstart's test users (benchmarks/bench_foldin_reg.py; RESULTS.md).
    fold_reg: float = 0.5
    fold_bias_reg: float = 0.3

    def validate(self) -> None:
        super().validate()
        self._check("burn", 0 <= self.burn < self.sweeps, f">= 0 and below sweeps ({self.sweeps})")
        self._check("sampler_dim", self.sampler_dim >= 1, ">= 1")
        self._check("rank", self.rank >= 1, ">= 1")
        self._check("beta0", self.beta0 > 0, "> 0")
        self._check("fold_reg", self.fold_reg >= 0, ">= 0")
        self._check("fold_bias_reg", self.fold_bias_reg >= 0, ">= 0")


class BPMF:
    """Sampled in numpy; the averaged factors are stored in a Keras mf model (see the module doc)."""

    name: ClassVar[str] = "bpmf"
    servable: ClassVar[bool] = True
    params_type: ClassVar[type[BPMFParams]] = BPMFParams

    def build(self, params: BPMFParams, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        """The empty mf container of dimension ``rank`` (no penalties: it is never trained)."""
        from recommender.families.layers import build_mf

        return build_mf(
            len(enc.user_keys),
            len(enc.movie_ids),
            global_mean=enc.global_mean,
            dim=params.rank,
            l2=0.0,
            bias_l2=0.0,
        )

    def fit(
        self, params: BPMFParams, enc: Encoded, scale: RatingScale, seed: int, on_epoch: EpochCallback | None
    ) -> Fitted:
        """History is per sweep; the validation RMSE is the running average's."""
        fit, val = enc.fit, enc.val
        res = sample_bpmf(
            enc.users[fit],
            enc.movies[fit],
            enc.ratings[fit],
            len(enc.user_keys),
            len(enc.movie_ids),
            global_mean=enc.global_mean,
            sweeps=params.sweeps,
            burn=params.burn,
            dim=params.sampler_dim,
            rank=params.rank,
            beta0=params.beta0,
            seed=seed,
            clip=(scale.minimum, scale.maximum),
            val=(enc.users[val], enc.movies[val], enc.ratings[val]) if val.size else None,
            on_sweep=on_epoch,
        )
        model = self.build(params, enc, scale, seed)
        for layer, values in (
            ("user_embedding", res.user_factors),
            ("movie_embedding", res.item_factors),
            ("user_bias", res.user_bias[:, None]),
            ("movie_bias", res.item_bias[:, None]),
        ):
            model.get_layer(layer).set_weights([values.astype(np.float32)])
        trace = res.history["val_rmse"] if "val_rmse" in res.history else []
        return Fitted(model, res.history, trace[-1] if trace else math.nan, params.sweeps)

    def inputs(self, enc: Encoded, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
        return {"user": users.astype(np.int32), "movie": movies.astype(np.int32)}

    def predict(
        self, model: Any, enc: Encoded, scale: RatingScale, users: np.ndarray, movies: np.ndarray
    ) -> np.ndarray:
        return keras_predict(model, self.inputs(enc, users, movies))[:, 0]

    def export(
        self, model: Any, params: BPMFParams, enc: Encoded, scale: RatingScale, *, seed: int, version: str
    ) -> ServingModel:
        return export_serving(
            self,
            model,
            factor_arrays(model),
            enc,
            scale,
            content_reg=params.content_reg,
            fold=(params.fold_reg, params.fold_bias_reg),
            seed=seed,
            version=version,
        )
