"""Item-item weights in closed form (numpy only): EASE and cosine item-kNN, and keeping them sparse.

Used by the ranking model's item-item part (``families/ranker.py``) and by the EASE and item-kNN
anchors every ranking evaluation reports (``evaluation/baselines.py``).
"""

from __future__ import annotations

import numpy as np

#: rows of a weight matrix partitioned at once by top_per_row
TOP_CHUNK = 1024
#: above this many movies EASE's inverse is taken in place (memory); at or below it, numpy's
#: inverse as always (the small datasets' figures stay as they were)
INPLACE_INVERSE_ABOVE = 5000

__all__ = ["ease_weights", "gram", "knn_weights", "rated_matrix", "sparse_rows", "top_per_row"]


def rated_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """The binary users x items matrix (float32) of who rated what; duplicate pairs count once."""
    x = np.zeros((n_rows, n_cols), dtype=np.float32)
    x[rows, cols] = 1.0
    return x


def gram(x: np.ndarray) -> np.ndarray:
    """``x' x`` in float64 (co-occurrence counts of a binary matrix).

    Multiplied in float32, which is exact for a 0/1 matrix of fewer than 2**24 rows (the counts are
    integers below that) and several times faster than float64.
    """
    if x.dtype == np.float32 and x.shape[0] < 2**24 and ((x == 0) | (x == 1)).all():
        return (x.T @ x).astype(np.float64)
    return x.T.astype(np.float64) @ x.astype(np.float64)


def ease_weights(g: np.ndarray, lam: float, *, overwrite: bool = False) -> np.ndarray:
    """EASE (Steck 2019): ``B = I - P diagMat(1 / diag(P))`` with ``P = (G + lam I)^-1``, zero diagonal.

    ``g`` is the item co-occurrence matrix ``X'X``; a user's scores are ``x_u B``. ``overwrite``:
    ``g`` is not needed afterwards, and a big one may be inverted in its own memory.
    """
    diagonal = np.diag_indices_from(g)
    if g.shape[0] > INPLACE_INVERSE_ABOVE:
        # one copy inverted in place (LAPACK getrf/getri): numpy's inv holds two more n x n buffers,
        # 1 GiB at 8,000 movies
        import scipy.linalg

        a = g if overwrite else g.copy()
        a[diagonal] += lam
        p = scipy.linalg.inv(a, overwrite_a=True, check_finite=False)
        del a
    else:
        # the ridge goes on g's own diagonal and is taken off after: no copy of g
        saved = g[diagonal].copy()
        g[diagonal] += lam
        try:
            p = np.linalg.inv(g)
        finally:
            g[diagonal] = saved
    p /= -np.diag(p)  # in place: at 8,000 movies each dense copy is 512 MiB
    p[np.diag_indices_from(p)] = 0.0
    return p.astype(np.float32)


def knn_weights(g: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Cosine item-kNN: ``sim(i, j) = c_ij / (sqrt(c_i c_j) + shrink)``, each row's ``k`` largest kept."""
    counts = np.sqrt(np.diag(g))
    sim = g / (np.outer(counts, counts) + shrink)
    sim[np.diag_indices_from(sim)] = 0.0
    return top_per_row(sim.astype(np.float32), k)


def top_per_row(w: np.ndarray, k: int, *, inplace: bool = False) -> np.ndarray:
    """``w`` with all but the ``k`` largest entries of each row set to zero (a dense copy, or ``w``
    itself with ``inplace``)."""
    out = w if inplace else w.copy()
    if k >= w.shape[1]:
        return out
    for start in range(0, w.shape[0], TOP_CHUNK):  # the partition's indices are int64 rows x cols
        block = out[start : start + TOP_CHUNK]
        keep = np.argpartition(-block, k - 1, axis=1)[:, :k]
        rows = np.arange(block.shape[0])[:, None]
        kept = block[rows, keep]
        block[:] = 0.0
        block[rows, keep] = kept
    out[out < 0] = 0.0  # a weak negative neighbour only lowers scores: not worth storing
    return out


def sparse_rows(w: np.ndarray, index: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays over ``n_items`` rows of a dense ``w`` whose rows and columns are ``index`` items.

    Row ``index[a]`` of the result holds ``w[a]``'s non-zero entries at columns ``index[b]``; items
    outside ``index`` get empty rows.
    """
    nz_rows, nz_cols = np.nonzero(w)
    global_rows = index[nz_rows]
    order = np.lexsort((index[nz_cols], global_rows))
    counts = np.bincount(global_rows, minlength=n_items)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, index[nz_cols][order].astype(np.int32), w[nz_rows, nz_cols][order].astype(np.float32)
