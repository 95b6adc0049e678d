"""Mean and standard deviation of a linear score over a fixed table, without scoring every row.

``/recommend`` standardises scores of the form ``table @ c`` over the whole catalogue. Their mean
is ``mean(table) @ c`` and their variance ``c @ cov(table) @ c``, so with the column means and the
covariance computed once per model a request needs O(d^2) instead of passes over every movie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "augmented"]

_CHUNK = 8192  # rows per block: bounds the float32 temporary at load


def augmented(*columns: np.ndarray) -> np.ndarray:
    """``[columns..., 1]`` as one C-contiguous float32 table (I, sum of widths + 1).

    The trailing column of ones lets one matvec add the per-request constant (the centring) too.
    """
    n = columns[0].shape[0]
    width = sum(1 if c.ndim == 1 else c.shape[1] for c in columns)
    table = np.empty((n, width + 1), dtype=np.float32)
    at = 0
    for c in columns:
        w = 1 if c.ndim == 1 else c.shape[1]
        table[:, at : at + w] = c.reshape(n, w)
        at += w
    table[:, at] = 1.0
    return table


@dataclass(frozen=True, slots=True)
class Moments:
    """Column means and covariance (float64) of the rows of a table."""

    mean: np.ndarray  # (w,)
    cov: np.ndarray  # (w, w)

    @classmethod
    def of(cls, table: np.ndarray) -> Moments:
        """Moments of ``table``'s rows (I, w), in blocks so no full-size temporary is made."""
        n, w = table.shape
        if n == 0:
            return cls(np.zeros(w), np.zeros((w, w)))
        mean = table.mean(axis=0, dtype=np.float64)
        mean32 = mean.astype(np.float32)
        cov = np.zeros((w, w))
        for start in range(0, n, _CHUNK):
            block = table[start : start + _CHUNK] - mean32
            cov += (block.T @ block).astype(np.float64)
        return cls(mean, cov / n)

    def of_linear(self, c: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation over the rows of ``table @ c`` (population std, as numpy's)."""
        c = np.asarray(c, dtype=np.float64)
        var = float(c @ self.cov @ c)
        # a constant score has exactly zero variance; rounding must not turn it into a tiny scale
        scale = float(np.abs(c) @ np.sqrt(np.maximum(np.diag(self.cov), 0.0)))
        std = np.sqrt(var) if var > (1e-6 * scale) ** 2 else 0.0
        return float(self.mean @ c), float(std)
