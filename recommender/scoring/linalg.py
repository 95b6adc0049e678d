"""The three pieces of math every part of the recommender shares (numpy only, one copy each).

- :func:`score`: ``mu + b_u + b_i + p . q``, the rating of every servable family;
- :func:`ridge`: the closed-form ridge solve (fold-in of a user, the content model);
- :func:`top_k`: the best ``k`` scores with a deterministic order (score descending, then id ascending).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ridge", "score", "top_k"]


def score(
    mu: float,
    user_bias: np.ndarray | float,
    item_bias: np.ndarray | float,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    *,
    paired: bool = False,
) -> np.ndarray:
    """Predicted ratings ``mu + b_u + b_i + p . q`` (unclipped).

    - ``paired=False``: ``p`` ``(d,)`` against ``q`` ``(I, d)`` scores one user on ``I`` movies;
      ``p`` ``(U, d)`` against ``q`` ``(I, d)`` gives the ``(U, I)`` grid (``user_bias`` ``(U,)``).
    - ``paired=True``: ``p`` and ``q`` are both ``(n, d)`` and row ``j`` scores the pair ``(p_j, q_j)``.
    """
    if paired:
        dot = np.einsum("ij,ij->i", user_factors, item_factors)
    else:
        dot = user_factors @ item_factors.T  # one matrix product: the serving hot path
        if dot.ndim == 2:
            user_bias = np.asarray(user_bias)[:, None]
    return mu + user_bias + item_bias + dot


def ridge(x: np.ndarray, y: np.ndarray, penalty: float | np.ndarray) -> np.ndarray:
    """``argmin_w |x w - y|^2 + sum_k penalty_k w_k^2``: solves ``(x'x + diag(penalty)) w = x'y``.

    ``penalty`` is one number for every coefficient or one per coefficient; ``y`` may have columns
    (one solve per column, sharing the factorisation).
    """
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += penalty
    return np.linalg.solve(gram, x.T @ y)


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best finite ``scores``, best first; ties go to the lower id.

    Non-finite scores (``-inf`` marks a blocked movie) are never returned, so fewer than ``k`` come
    back when fewer are left. Ties at the cut-off are broken by id too, so the answer never depends
    on how the partition happened to order equal scores.
    """
    n = scores.size
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    # Usually the k-th value is finite and the k best are too: then a partition and one comparison
    # over the catalogue suffice (this runs on every /recommend). Otherwise the careful path below.
    kth = np.partition(scores, n - k)[n - k]
    if np.isfinite(kth):
        top = np.flatnonzero(scores >= kth)
        above = int((scores[top] > kth).sum())
        if above < k <= top.size and np.isfinite(scores[top]).all():
            return _ordered(scores, ids, top, kth, k)
    finite = np.isfinite(scores)
    k = min(k, int(finite.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    scores = np.where(finite, scores, -np.inf)
    kth = np.partition(scores, n - k)[n - k]
    return _ordered(scores, ids, np.flatnonzero(scores >= kth), kth, k)


def _ordered(scores: np.ndarray, ids: np.ndarray, top: np.ndarray, kth: float, k: int) -> np.ndarray:
    """The ``k`` of ``top`` (every position scoring at least ``kth``), ties at ``kth`` by id, best first."""
    values = scores[top]
    above, tied = top[values > kth], top[values == kth]
    if above.size + tied.size > k:
        tied = tied[np.argsort(ids[tied], kind="stable")[: k - above.size]]
    top = np.concatenate([above, tied])
    return top[np.lexsort((ids[top], -scores[top]))]
