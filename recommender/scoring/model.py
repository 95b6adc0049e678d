"""Numpy-only scoring from exported arrays: predict, top-k, fold-in, content model, similar movies.

This module must never import TensorFlow (the bot process loads it); a test checks ``sys.modules``.
Every servable family exports to the same shape: ``rating = mu + b_u + b_i + <p_u, q_i>``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.core.atomic import atomic_write
from recommender.core.errors import NoModel
from recommender.core.types import RatingScale
from recommender.features.content import ContentFeatures
from recommender.scoring.linalg import ridge, score, top_k
from recommender.scoring.moments import Moments, augmented
from recommender.scoring.ranking import History, RankingModel, standardise

log = logging.getLogger(__name__)

__all__ = ["ServingModel"]

SERVING_FILE = "serving.npz"
IDMAPS_FILE = "idmaps.json"
_FORMAT = 1


def fit_content_map(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, reg: float) -> np.ndarray:
    """Weighted ridge ``features -> targets`` (rows = movies); returns the (F, T) weight matrix.

    Movies are weighted by their rating count so a movie seen once does not pull the map around.
    """
    w = np.sqrt(weights)[:, None]
    return ridge(features * w, targets * w, reg)


@dataclass
class ServingModel:
    """What the service scores with: numpy arrays plus the id maps, no TensorFlow."""

    version: str
    family: str
    scale: RatingScale
    global_mean: float
    user_keys: list[str]
    user_factors: np.ndarray  # (U, d)
    user_bias: np.ndarray  # (U,)
    movie_ids: np.ndarray  # (I,) int64, dataset movie ids
    item_factors: np.ndarray  # (I, d)
    item_bias: np.ndarray  # (I,)
    item_count: np.ndarray  # (I,) training ratings per movie: the confidence used by the ranking
    content: ContentFeatures
    content_weights: np.ndarray  # (F, d + 1): features -> [q_i, b_i]
    reg: float = 0.1  # ridge strength per rating, as in training
    bias_reg: float = 0.01
    rank_weight: float = 0.0  # how much log(count) counts in the served ranking
    metrics: dict = field(default_factory=dict)
    trained_at: float = 0.0
    #: the model trained to rank that orders /recommend; None: rank by predicted stars + prior
    ranker: RankingModel | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._user_index = {k: i for i, k in enumerate(self.user_keys)}
        self._movie_index = {int(m): i for i, m in enumerate(self.movie_ids.tolist())}
        norms = np.linalg.norm(self.item_factors, axis=1)
        self._unit = (self.item_factors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
        self._prior = self.rank_weight * np.log1p(self.item_count.astype(np.float64))
        # Ranking scores every movie on each /recommend: float32 factors make that matvec several
        # times faster (benchmarks/RESULTS.md, serving), and [q | mu + b_i + prior | 1] lets one
        # matvec add the per-movie constant and the member's bias too. Predicted stars stay float64
        # (export parity is checked on them).
        self._rank_table = augmented(self.item_factors, self.global_mean + self.item_bias + self._prior)
        self._q32 = self._rank_table[:, : self.dim]
        self._rank_base32 = self._rank_table[:, self.dim]
        #: (ranker, where its movies sit here, the rating model's share table and moments in the
        #: ranker's order); rebuilt when another ranker is attached. One tuple: swapped atomically.
        self._share_cache: tuple[RankingModel | None, np.ndarray | None, tuple | None] = (None, None, None)
        if self.ranker is not None:
            self._share_parts(self.ranker)

    # --- users -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1])

    def user_vector(self, key: str) -> tuple[np.ndarray, float] | None:
        """The trained embedding and bias of ``key`` (``member_key(..)`` / ``ml_key(..)``), if any."""
        i = self._user_index.get(key)
        if i is None:
            return None
        return self.user_factors[i].copy(), float(self.user_bias[i])

    def fold_in(
        self, movie_ids: Sequence[int], stars: Sequence[float], *, reg: float | None = None
    ) -> tuple[np.ndarray, float]:
        """Closed-form ridge for a user's vector and bias against the frozen movie factors.

        Minimises ``sum (r - mu - b_i - b_u - p.q_i)^2 + reg*n*|p|^2 + bias_reg*n*b_u^2`` - the same
        per-rating penalty the model was trained with, so a folded-in user looks like a trained one.
        Movies without an embedding are ignored; with none left, the result is the zero user.
        """
        reg = self.reg if reg is None else reg
        rows, ys = [], []
        for m, s in zip(movie_ids, stars, strict=True):
            i = self._movie_index.get(int(m))
            if i is not None:
                rows.append(i)
                ys.append(float(s))
        if not rows:
            return np.zeros(self.dim), 0.0
        idx = np.asarray(rows)
        x = np.hstack([self.item_factors[idx], np.ones((len(idx), 1))])
        y = np.asarray(ys) - self.global_mean - self.item_bias[idx]
        n = max(len(idx), 1)
        # the tiny jitter keeps the solve defined when every penalty is zero
        penalty = np.array([reg * n] * self.dim + [self.bias_reg * n]) + 1e-9
        w = ridge(x, y, penalty)
        return w[:-1], float(w[-1])

    # --- movies ------------------------------------------------------------------------------
    def has_movie(self, movie_id: int) -> bool:
        return int(movie_id) in self._movie_index

    def movie_index(self, movie_ids: Iterable[int]) -> np.ndarray:
        """Dense indices of ``movie_ids``; -1 for movies without an embedding."""
        return np.fromiter((self._movie_index.get(int(m), -1) for m in movie_ids), dtype=np.int64)

    def raw_scores(self, user: tuple[np.ndarray, float], index: np.ndarray | None = None) -> np.ndarray:
        """Unclipped ``mu + b_u + b_i + p.q_i`` for the given dense indices (all movies by default)."""
        vec, bias = user
        q = self.item_factors if index is None else self.item_factors[index]
        b = self.item_bias if index is None else self.item_bias[index]
        return score(self.global_mean, bias, b, np.asarray(vec, dtype=np.float64), q)

    def predict(self, user: tuple[np.ndarray, float], movie_ids: Sequence[int]) -> np.ndarray:
        """Predicted stars, clipped to the scale; movies without an embedding get ``mu + b_u``."""
        idx = self.movie_index(movie_ids)
        known = idx >= 0
        out = np.full(len(idx), self.global_mean + user[1], dtype=np.float64)
        if known.any():
            out[known] = self.raw_scores(user, idx[known])
        return np.clip(out, self.scale.minimum, self.scale.maximum)

    def content_vector(self, genres: Sequence[str] | None, year: float | None) -> tuple[np.ndarray, float]:
        """Item factors and bias for a movie the model never saw, from its genres and year."""
        out = self.content.vector(genres, year) @ self.content_weights
        return out[:-1], float(out[-1])

    def predict_content(
        self, user: tuple[np.ndarray, float], genres: Sequence[str] | None, year: float | None
    ) -> float:
        q, b = self.content_vector(genres, year)
        raw = score(self.global_mean, user[1], b, np.asarray(user[0], dtype=np.float64), q)
        return float(self.scale.clip(float(raw)))

    def rank_scores(self, user: tuple[np.ndarray, float]) -> np.ndarray:
        """The served ranking score of every movie: predicted rating plus a confidence prior.

        A model fitted for RMSE ranks obscure movies with a handful of glowing ratings on top;
        adding ``rank_weight * log(1 + count)`` favours movies whose prediction rests on evidence.
        """
        vec, bias = user
        # float32 throughout: mu, b_i and the prior are a column of the table, b_u rides on the ones
        return self._rank_table @ np.append(np.asarray(vec, dtype=np.float32), [1.0, bias]).astype(np.float32)

    def _share_parts(self, ranker: RankingModel) -> tuple[np.ndarray, tuple[np.ndarray, Moments] | None]:
        """Where the ranker's movies sit in this model, and the share's table and moments in the
        ranker's order (None when some ranked movie has no embedding here)."""
        owner, rows, share = self._share_cache
        if owner is not ranker or rows is None:
            # vectorised: a Python lookup per ranked movie was ~0.1 s of start-up at 87k movies
            order = np.argsort(self.movie_ids, kind="stable")
            at = np.minimum(np.searchsorted(self.movie_ids[order], ranker.movie_ids), max(order.size - 1, 0))
            rows = (
                np.where(self.movie_ids[order[at]] == ranker.movie_ids, order[at], -1)
                if order.size
                else np.full(ranker.movie_ids.size, -1, dtype=np.int64)
            )
            share = None
            if rows.size and bool((rows >= 0).all()):
                same = rows.size == self._rank_table.shape[0] and bool((rows == np.arange(rows.size)).all())
                table = self._rank_table if same else self._rank_table[rows]
                share = (table, Moments.of(table[:, :-1]))
            self._share_cache = (ranker, rows, share)
        return rows, share

    def served_scores(
        self, history: History, user: tuple[np.ndarray, float] | None
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """The /recommend score of every movie the ranker ranks (``ranker.movie_ids`` order), and
        the ranker's scale factors (for :meth:`RankingModel.because`).

        The ranking model's score, plus, for a member with few ratings, a share of this model's own
        ranking (predicted stars plus the popularity prior, standardised): with five ratings the
        learned sequence says little yet, and the rating model's view of the member helps.
        """
        ranker = self.ranker
        if ranker is None:
            raise ValueError("this model has no ranking model")
        scores, scales = ranker.scored(history)
        weight = ranker.star_weight(int(history.index.size))
        if weight <= 0 or user is None:
            return scores, scales
        rows, share = self._share_parts(ranker)
        if share is not None:
            # weight * standardise(q.v + base) as one matvec: mean and spread from the moments
            table, moments = share
            c = np.append(np.asarray(user[0], dtype=np.float64), 1.0)
            mean, std = moments.of_linear(c)
            f = weight / (std if std > 0 else 1.0)
            scores += table @ np.append(f * c, -f * mean).astype(np.float32)
        else:  # a ranked movie without an embedding here: the formula as written
            own = self.rank_scores(user)
            mine = np.where(rows >= 0, own[np.maximum(rows, 0)], np.float32(own.min()))
            scores += np.float32(weight) * standardise(mine.astype(np.float32))
        return scores, scales

    def recommend(
        self, user: tuple[np.ndarray, float], k: int, exclude: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """Top ``k`` movies as ``(movie_id, predicted stars)``; never a movie in ``exclude``."""
        if k <= 0:
            return []
        scores = self.rank_scores(user)
        blocked = self.movie_index(exclude)
        blocked = blocked[blocked >= 0]
        if blocked.size:
            scores = scores.copy()
            scores[blocked] = -np.inf
        top = top_k(scores, self.movie_ids, k)
        if top.size == 0:
            return []
        stars = np.clip(self.raw_scores(user, top), self.scale.minimum, self.scale.maximum)
        return [(int(self.movie_ids[i]), float(s)) for i, s in zip(top, stars, strict=True)]

    def similar(self, movie_id: int, k: int) -> list[tuple[int, float]]:
        """The ``k`` movies whose factors point the most the same way (cosine), best first."""
        i = self._movie_index.get(int(movie_id))
        if i is None or k <= 0:
            return []
        cos = self._unit @ self._unit[i]
        cos[i] = -np.inf
        top = top_k(cos, self.movie_ids, k)
        return [(int(self.movie_ids[j]), float(cos[j])) for j in top]

    # --- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``serving.npz`` and ``idmaps.json`` into ``directory`` (each atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "user_factors": self.user_factors.astype(np.float64),
            "user_bias": self.user_bias.astype(np.float64),
            "movie_ids": self.movie_ids.astype(np.int64),
            "item_factors": self.item_factors.astype(np.float64),
            "item_bias": self.item_bias.astype(np.float64),
            "item_count": self.item_count.astype(np.int64),
            "content_weights": self.content_weights.astype(np.float64),
        }
        meta = {
            "format": _FORMAT,
            "version": self.version,
            "family": self.family,
            "scale": [self.scale.minimum, self.scale.maximum, self.scale.step],
            "global_mean": self.global_mean,
            "user_keys": self.user_keys,
            "genres": list(self.content.genres),
            "year_mean": self.content.year_mean,
            "year_std": self.content.year_std,
            "reg": self.reg,
            "bias_reg": self.bias_reg,
            "rank_weight": self.rank_weight,
            "metrics": self.metrics,
            "trained_at": self.trained_at,
        }
        atomic_write(directory / SERVING_FILE, lambda f: np.savez(f, **arrays))
        atomic_write(directory / IDMAPS_FILE, lambda f: f.write(json.dumps(meta).encode()))
        if self.ranker is not None:
            self.ranker.save(directory)

    @classmethod
    def load(cls, directory: Path) -> ServingModel:
        """Load what :meth:`save` wrote; :class:`NoModel` says which file is missing or broken."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / IDMAPS_FILE).read_text())
            with np.load(directory / SERVING_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            model = cls(
                version=str(meta["version"]),
                family=str(meta["family"]),
                scale=RatingScale(*(float(x) for x in meta["scale"])),
                global_mean=float(meta["global_mean"]),
                user_keys=[str(k) for k in meta["user_keys"]],
                user_factors=arrays["user_factors"],
                user_bias=arrays["user_bias"],
                movie_ids=arrays["movie_ids"],
                item_factors=arrays["item_factors"],
                item_bias=arrays["item_bias"],
                item_count=arrays["item_count"],
                content=ContentFeatures(
                    tuple(meta["genres"]), float(meta["year_mean"]), float(meta["year_std"])
                ),
                content_weights=arrays["content_weights"],
                reg=float(meta["reg"]),
                bias_reg=float(meta["bias_reg"]),
                rank_weight=float(meta["rank_weight"]),
                metrics=dict(meta.get("metrics") or {}),
                trained_at=float(meta.get("trained_at") or 0.0),
                ranker=RankingModel.load(directory),
            )
            model._check_shapes()
        except FileNotFoundError as exc:
            raise NoModel(
                f"The model files are incomplete ({Path(exc.filename or '').name} is missing)."
            ) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NoModel(
                f"The model files in {directory.name} are unreadable ({type(exc).__name__})."
            ) from exc
        return model

    def _check_shapes(self) -> None:
        u, i = len(self.user_keys), len(self.movie_ids)
        d = self.item_factors.shape[1] if self.item_factors.ndim == 2 else -1
        ok = (
            self.user_factors.shape == (u, d)
            and self.user_bias.shape == (u,)
            and self.item_factors.shape == (i, d)
            and self.item_bias.shape == (i,)
            and self.item_count.shape == (i,)
            and self.content_weights.shape == (self.content.size, d + 1)
        )
        if not ok:
            raise ValueError("array shapes do not match the id maps")
