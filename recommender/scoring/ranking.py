"""The exported ranking model in numpy: what ``/recommend`` orders movies by. Never imports TensorFlow.

A member is their rated movies in the order they rated them, nothing learned per member, so a new
member and a rating made a second ago are served at once without a fold-in. Two parts score every
movie, each standardised over the catalogue and blended with a weight chosen on validation data:

- the *sequence* part, trained in Keras (``families/ranker.py``) to predict the movies a user rates
  next from those rated before: ``out @ (sum_j a_j in_all[j] + sum_j r_j in_recent[j]) + out_bias``,
  with ``a_j = 1/sqrt(n)`` over the whole history and ``r_j`` decaying with how long ago ``j`` was rated;
- the *item-item* part: closed-form EASE weights over the frequently rated movies, kept sparse (the
  strongest neighbours of each movie), ``sum_j B[j]`` over the rated movies.

Both parts are linear in the rated movies, so what each rated movie contributed to a pick is exact:
:meth:`RankingModel.because` names the movies a pick rests on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.core.atomic import atomic_write
from recommender.scoring.moments import Moments, augmented

__all__ = ["RANKING_FILE", "History", "RankingModel", "recency_weights", "standardise"]

RANKING_FILE = "ranking.npz"
_FORMAT = 1


def recency_weights(n: int, tau: float) -> np.ndarray:
    """Weights of ``n`` movies in rating order (oldest first): ``exp(-age / tau)``, summing to 1."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    age = np.arange(n - 1, -1, -1, dtype=np.float64)
    w = np.exp(-age / max(tau, 1e-6))
    return (w / w.sum()).astype(np.float32)


@dataclass(frozen=True, slots=True)
class History:
    """One user's rated movies as dense indices of the ranking model, oldest first."""

    index: np.ndarray  # (n,) int64
    all_weights: np.ndarray  # (n,) float32
    recent_weights: np.ndarray  # (n,) float32

    @property
    def empty(self) -> bool:
        return self.index.size == 0


def standardise(v: np.ndarray) -> np.ndarray:
    std = float(v.std())
    return (v - np.float32(v.mean())) / np.float32(std if std > 0 else 1.0)


@dataclass
class RankingModel:
    """Numpy arrays of the sequence part and the sparse item-item part, plus the blend."""

    movie_ids: np.ndarray  # (I,) int64
    in_all: np.ndarray  # (I, d) float32
    in_recent: np.ndarray  # (I, d) float32
    out: np.ndarray  # (I, d) float32
    out_bias: np.ndarray  # (I,) float32
    ease_indptr: np.ndarray  # (I + 1,) int64: row j holds the neighbours of movie j
    ease_indices: np.ndarray  # (nnz,) int32
    ease_data: np.ndarray  # (nnz,) float32
    tau: float
    sequence_weight: float  # blend: weight of the standardised sequence part
    item_weight: float  # blend: weight of the standardised item-item part
    metrics: dict = field(default_factory=dict)
    #: ``(up to n ratings, weight)``, ascending: how much the rating model's ranking (predicted stars
    #: plus popularity prior, standardised) is added for a member with few ratings; 0 beyond the last
    star_weights: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        self.check_shapes()
        self._index = dict(zip(self.movie_ids.tolist(), range(self.movie_ids.size), strict=True))
        # [out | out_bias | 1]: one matvec gives the scaled, centred sequence part, with no pass over
        # the bias or the mean; out and out_bias become views of it (the arrays are read-only).
        self._table = augmented(self.out, self.out_bias)
        d = self._table.shape[1] - 2
        self.out, self.out_bias = self._table[:, :d], self._table[:, d]
        # the sequence part's mean and spread over the catalogue come from these, not from a pass
        self._moments = Moments.of(self._table[:, : d + 1])

    @property
    def size(self) -> int:
        return int(self.movie_ids.size)

    def star_weight(self, n_ratings: int) -> float:
        """Weight of the rating model's ranking for a member with ``n_ratings`` known ratings."""
        for up_to, weight in self.star_weights:
            if n_ratings <= up_to:
                return float(weight)
        return 0.0

    def history(self, movie_ids: Sequence[int]) -> History:
        """``movie_ids`` (oldest first; movies the model does not know are left out) as a History."""
        index = np.fromiter(
            (i for i in (self._index.get(int(m), -1) for m in movie_ids) if i >= 0), dtype=np.int64
        )
        if index.size:  # a movie rated twice counts once, at its latest position
            _, last = np.unique(index[::-1], return_index=True)
            index = index[np.sort(index.size - 1 - last)]
        n = index.size
        all_w = np.full(n, 1.0 / np.sqrt(n) if n else 0.0, dtype=np.float32)
        return History(index, all_w, recency_weights(n, self.tau))

    def movie_index(self, movie_ids: Sequence[int]) -> np.ndarray:
        """Dense indices of ``movie_ids``; -1 for movies the model does not rank."""
        return np.fromiter((self._index.get(int(m), -1) for m in movie_ids), dtype=np.int64)

    # --- the two parts -----------------------------------------------------------------------
    def user_vector(self, h: History) -> np.ndarray:
        """The sequence part's user vector: weighted input rows of the rated movies."""
        return h.all_weights @ self.in_all[h.index] + h.recent_weights @ self.in_recent[h.index]

    def sequence_scores(self, h: History) -> np.ndarray:
        return self.out @ self.user_vector(h) + self.out_bias

    def _neighbours(self, h: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sparse rows of the rated movies: (position in the history, movie index, weight)."""
        starts, ends = self.ease_indptr[h.index], self.ease_indptr[h.index + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=np.float32)
        owner = np.repeat(np.arange(h.index.size), lengths)
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        at = np.repeat(starts, lengths) + offsets
        return owner, self.ease_indices[at].astype(np.int64), self.ease_data[at]

    def item_scores(self, h: History) -> np.ndarray:
        """``sum_j B[j]`` over the rated movies, from their sparse rows in one pass."""
        _owner, cols, data = self._neighbours(h)
        return np.bincount(cols, weights=data, minlength=self.size).astype(np.float32)

    def scores(self, h: History) -> np.ndarray:
        """The served score of every movie (float32): the standardised parts, blended."""
        return self.scored(h)[0]

    def scored(self, h: History) -> tuple[np.ndarray, tuple[float, float]]:
        """:meth:`scores` and the two parts' scale factors (what :meth:`because` needs).

        ``a (seq - mean(seq)) + b (item - mean(item))`` with ``a``, ``b`` the blend weights over the
        parts' standard deviations; computed as one matvec plus a scatter over the rated movies'
        neighbours (the means and deviations without passes over the catalogue).
        """
        if h.empty:
            return self.out_bias.copy(), (0.0, 0.0)
        u = np.append(self.user_vector(h).astype(np.float64), 1.0)
        s_mean, s_std = self._moments.of_linear(u)
        a = self.sequence_weight / (s_std if s_std > 0 else 1.0)
        _owner, cols, data = self._neighbours(h)
        item = np.bincount(cols, weights=data, minlength=self.size) if cols.size else None
        i_mean = float(data.sum(dtype=np.float64)) / self.size
        i_var = float(item @ item) / self.size - i_mean * i_mean if item is not None else 0.0
        i_std = np.sqrt(max(i_var, 0.0))
        b = self.item_weight / i_std if i_std > 0 else 0.0
        vec = np.append(a * u, -a * s_mean - b * i_mean).astype(np.float32)
        scores = self._table @ vec
        if b and item is not None and cols.size * 4 < self.size:
            # rows hit twice get the same value twice: the right-hand side is read before writing
            scores[cols] = scores[cols] + np.float32(b) * item[cols].astype(np.float32)
        elif b and item is not None:  # long histories touch most movies: one dense pass is cheaper
            item *= b
            scores += item.astype(np.float32)
        return scores, (a, b)

    def because(
        self, h: History, picks: np.ndarray, scales: tuple[float, float], n: int = 2
    ) -> list[list[tuple[int, float]]]:
        """For each dense index in ``picks``, the ``n`` rated movies that added most to its score.

        ``scales`` are the factors :meth:`scored` returned for ``h``. Returns ``(movie_id, share)``
        pairs, ``share`` being that movie's part of the positive contributions; only movies that
        pushed the pick up are named.
        """
        if h.empty or not len(picks):
            return [[] for _ in range(len(picks))]
        a, b = scales
        rows = h.index
        # sequence part: movie j adds (a_j in_all[j] + r_j in_recent[j]) . out[i]
        inputs = h.all_weights[:, None] * self.in_all[rows] + h.recent_weights[:, None] * self.in_recent[rows]
        contrib = a * (inputs @ self.out[picks].T)  # (n_rated, n_picks)
        if b:
            owner, cols, data = self._neighbours(h)
            picks = np.asarray(picks, dtype=np.int64)
            order = np.argsort(picks, kind="stable")
            at = np.minimum(np.searchsorted(picks[order], cols), picks.size - 1)
            hit = picks[order][at] == cols  # one pass over the neighbours, not one per pick
            np.add.at(contrib, (owner[hit], order[at[hit]]), b * data[hit])
        out: list[list[tuple[int, float]]] = []
        for k in range(contrib.shape[1]):
            col = contrib[:, k]
            total = float(col[col > 0].sum())
            order = np.argsort(-col, kind="stable")[:n]
            out.append(
                [
                    (int(self.movie_ids[rows[r]]), float(col[r] / total))
                    for r in order
                    if col[r] > 0 and total > 0
                ]
            )
        return out

    def reduced(self, rank: int) -> RankingModel:
        """This model with its sequence part projected on the ``rank`` strongest directions of ``out``.

        ``out = U S V^T``; serving ``out V_k`` against users ``V_k^T u`` (``in_* V_k``) is a
        ``rank``-dimensional model whose scores are ``out V_k V_k^T u``: the same shape of model,
        a narrower matvec per request. Returns ``self`` when ``rank`` is not below the dimension.
        """
        d = self.out.shape[1]
        if rank >= d:
            return self
        _, _, vt = np.linalg.svd(np.asarray(self.out, dtype=np.float64), full_matrices=False)
        basis = vt[:rank].T  # (d, rank)

        def project(table: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(table, dtype=np.float64) @ basis, dtype=np.float32)

        return dataclasses.replace(
            self,
            in_all=project(self.in_all),
            in_recent=project(self.in_recent),
            out=project(self.out),
            out_bias=np.array(self.out_bias, dtype=np.float32),
            metrics=dict(self.metrics),
        )

    # --- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        arrays = {
            "movie_ids": self.movie_ids.astype(np.int64),
            "in_all": self.in_all.astype(np.float32),
            "in_recent": self.in_recent.astype(np.float32),
            "out": self.out.astype(np.float32),
            "out_bias": self.out_bias.astype(np.float32),
            "ease_indptr": self.ease_indptr.astype(np.int64),
            "ease_indices": self.ease_indices.astype(np.int32),
            "ease_data": self.ease_data.astype(np.float32),
        }
        meta = {
            "format": _FORMAT,
            "tau": self.tau,
            "sequence_weight": self.sequence_weight,
            "item_weight": self.item_weight,
            "metrics": self.metrics,
            "star_weights": [list(x) for x in self.star_weights],
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        atomic_write(Path(directory) / RANKING_FILE, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, directory: Path) -> RankingModel | None:
        """The ranking model saved in ``directory``; None when the version has none."""
        path = Path(directory) / RANKING_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        meta = json.loads(a.pop("meta").tobytes().decode())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unknown ranking format {meta.get('format')!r}")
        model = cls(
            movie_ids=a["movie_ids"],
            in_all=a["in_all"],
            in_recent=a["in_recent"],
            out=a["out"],
            out_bias=a["out_bias"],
            ease_indptr=a["ease_indptr"],
            ease_indices=a["ease_indices"],
            ease_data=a["ease_data"],
            tau=float(meta["tau"]),
            sequence_weight=float(meta["sequence_weight"]),
            item_weight=float(meta["item_weight"]),
            metrics=dict(meta.get("metrics") or {}),
            star_weights=tuple((int(n), float(w)) for n, w in meta.get("star_weights", [])),
        )
        model.check_shapes()
        return model

    def check_shapes(self) -> None:
        i = self.size
        d = self.out.shape[1] if self.out.ndim == 2 else -1
        ok = (
            self.in_all.shape == (i, d)
            and self.in_recent.shape == (i, d)
            and self.out_bias.shape == (i,)
            and self.ease_indptr.shape == (i + 1,)
            and self.ease_indices.shape == self.ease_data.shape
            and int(self.ease_indptr[-1]) == self.ease_indices.size
        )
        if not ok:
            raise ValueError("ranking arrays do not match each other")
