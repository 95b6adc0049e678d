"""The ranking model behind ``/recommend``: a Keras model trained to rank, plus an item-item part.

The Keras part learns to predict the movies a user rates *next* from the ones rated before (a
softmax over the whole catalogue, the later movies as soft targets), reading a user as the bag of
their history and a recency-weighted bag of it. The item-item part is EASE in closed form over the
frequently rated movies. Everything that could be tuned is chosen on a validation slice carved
from the training ratings (each user's latest ratings): the number of epochs (early stopping on
NDCG@5), EASE's ridge strength and the blend of the two. The validation model also chooses, through
``families/newcomers.py``, how much of the rating model's ranking short histories get. Then both
parts are refitted on every rating (unless the validation held back a sliver of them, as on a big
dataset where only a sample of users is scored) and exported to
:class:`~recommender.scoring.ranking.RankingModel` with a parity check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from recommender.families.base import EpochCallback, ExportParityError
from recommender.families.ranker_keras import sequence_scores, train_sequence
from recommender.families.ranker_params import RankerParams
from recommender.families.sequences import Histories, carve_latest, histories, ndcg_of_scores
from recommender.scoring.itemitem import ease_weights, sparse_rows, top_per_row
from recommender.scoring.ranking import RankingModel

log = logging.getLogger(__name__)

__all__ = ["RankerParams", "StarWeightChooser", "fit_ranker"]

#: given the validation ranking model (fitted without some users), the star-weight table and its record
StarWeightChooser = Callable[[RankingModel], tuple[tuple[tuple[int, float], ...], dict]]

PARITY_TOLERANCE = 1e-3
GRAM_BLOCK = 1000  # columns of the co-occurrence counts multiplied at once
#: with ``refit`` on auto, the validation fit is refitted on every rating only when the ratings it
#: held back (validation tails, newcomers) are at least this share of them: at scale they are a
#: sliver, and the refit would cost as much as the fit
REFIT_MIN_SHARE = 0.01
EASE_LAMBDAS = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0)
#: narrower projections of the sequence part tried for serving (the full width is always a candidate)
SERVE_RANKS = (8, 16, 32, 48, 64, 96)
#: weight of the sequence part against the item-item part (0 = item-item only, None = sequence only)
BLENDS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, None)
#: validation users x ranked movies scored at once (fewer users on a big catalogue: bounds memory)
VAL_SCORE_CELLS = 60_000_000
#: EASE's lambda is chosen on at most this many of the most-rated movies (each candidate is a dense
#: inverse, cubic in the movies); the chosen one is then fitted on all of them
GRID_MAX_ITEMS = 5000


# --- the item-item part --------------------------------------------------------------------------
def _ease_items(h: Histories, p: RankerParams) -> np.ndarray:
    counts = np.bincount(np.concatenate(h.items) if h.items else np.zeros(0, np.int64), minlength=h.n_items)
    eligible = np.flatnonzero(counts >= p.ease_min_count)
    if p.ease_max_items and eligible.size > p.ease_max_items:
        eligible = eligible[np.argsort(-counts[eligible], kind="stable")[: p.ease_max_items]]
    return np.sort(eligible)


def _ease_grid_items(h: Histories, items: np.ndarray) -> np.ndarray:
    if items.size <= GRID_MAX_ITEMS:
        return items
    counts = np.bincount(np.concatenate(h.items), minlength=h.n_items)[items]
    return np.sort(items[np.argsort(-counts, kind="stable")[:GRID_MAX_ITEMS]])


def _item_gram(h: Histories, items: np.ndarray) -> np.ndarray:
    """``X'X`` over ``items`` for the binary users x items matrix ``X`` of ``h`` (float64 counts).

    Multiplied sparse, a block of columns at a time: the work is the sum of each user's squared
    count of rated ``items`` (a fraction of the dense product's users x items^2 at scale), and no
    sparse product of all the pairs is held at once. Counts are exact in float32.
    """
    import scipy.sparse

    local = np.full(h.n_items, -1, dtype=np.int32)
    local[items] = np.arange(items.size, dtype=np.int32)
    rated = [m[m >= 0] for m in (local[it] for it in h.items)]
    indptr = np.zeros(len(rated) + 1, dtype=np.int64)
    np.cumsum([r.size for r in rated], out=indptr[1:])
    indices = np.concatenate(rated) if rated else np.zeros(0, np.int32)
    del rated
    x = scipy.sparse.csr_matrix(
        (np.ones(indices.size, np.float32), indices, indptr), shape=(len(h.items), items.size)
    )
    x.sum_duplicates()
    x.data[:] = 1.0  # a movie rated twice by one user counts once
    by_column = x.tocsc()
    g = np.empty((items.size, items.size), dtype=np.float64)
    for start in range(0, items.size, GRAM_BLOCK):
        g[:, start : start + GRAM_BLOCK] = (x.T @ by_column[:, start : start + GRAM_BLOCK]).toarray()
    return g


def _item_only(movie_ids: np.ndarray, csr: tuple, tau: float) -> RankingModel:
    """A ranking model with only its item-item part (to score that part on validation)."""
    zeros = np.zeros((movie_ids.size, 1), dtype=np.float32)
    return RankingModel(movie_ids, zeros, zeros, zeros, zeros[:, 0], *csr, tau, 0.0, 1.0)


def _item_part(
    g: np.ndarray, items: np.ndarray, n_items: int, lam: float, p: RankerParams, *, last: bool = False
) -> tuple:
    """The item-item part's CSR arrays; ``last``: ``g`` is not needed again (it may be overwritten)."""
    dense = top_per_row(ease_weights(g, lam, overwrite=last), p.ease_neighbours, inplace=True)
    return sparse_rows(dense, items, n_items)


def _no_item_part(n_items: int) -> tuple:
    return np.zeros(n_items + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)


# --- choosing on validation, refitting, exporting ------------------------------------------------
def _restore_unscored(fit: Histories, base: Histories, scored: np.ndarray) -> Histories:
    """``fit`` with every user but the ``scored`` ones given back their whole history: when only a
    sample is scored (a big dataset), holding the rest back would only take ratings from the fit."""
    keep = np.zeros(len(base.items), dtype=bool)
    keep[scored] = True
    return Histories(
        fit.movie_ids,
        fit.users,
        [f if k else b for f, b, k in zip(fit.items, base.items, keep, strict=True)],
        [f if k else b for f, b, k in zip(fit.stars, base.stars, keep, strict=True)],
    )


def _standardise(m: np.ndarray) -> np.ndarray:
    """Each row of ``m`` minus its mean over its standard deviation, in ``m``'s own memory."""
    sd = np.maximum(m.std(axis=1, keepdims=True), 1e-9)
    m -= m.mean(axis=1, keepdims=True)
    m /= sd
    return m


def _n_ratings(h: Histories) -> int:
    return sum(len(it) for it in h.items)


def _without(h: Histories, users: Collection[str]) -> Histories:
    if not users:
        return h
    drop = set(users)
    keep = [u for u, key in enumerate(h.users) if key not in drop]
    return Histories(
        h.movie_ids, [h.users[u] for u in keep], [h.items[u] for u in keep], [h.stars[u] for u in keep]
    )


def _assemble(model: Any, csr: tuple, h: Histories, p: RankerParams, blend: float | None) -> RankingModel:
    seq_w, item_w = (1.0, 0.0) if blend is None else (blend / (1.0 + blend), 1.0 / (1.0 + blend))
    indptr, indices, data = csr
    return RankingModel(
        movie_ids=h.movie_ids.copy(),
        in_all=np.asarray(model.in_all.numpy(), dtype=np.float32),
        in_recent=np.asarray(model.in_recent.numpy(), dtype=np.float32),
        out=np.asarray(model.out_emb.numpy(), dtype=np.float32),
        out_bias=np.asarray(model.out_bias.numpy(), dtype=np.float32),
        ease_indptr=indptr,
        ease_indices=indices,
        ease_data=data,
        tau=p.tau,
        sequence_weight=seq_w,
        item_weight=item_w,
        star_weights=p.star_weight_table(),
    )


def _choose_rank(
    model: RankingModel, rows: list[np.ndarray], mean_ndcg: Callable[[np.ndarray], float], tolerance: float
) -> tuple[int, dict[str, float]]:
    """The narrowest projection of the sequence part (``RankingModel.reduced``) whose validation
    NDCG@5 is within ``tolerance`` (a share) of the full model's: each request's matvec is that wide."""
    d = int(model.out.shape[1])
    if not rows:
        return d, {}

    def score(m: RankingModel) -> float:
        return mean_ndcg(np.vstack([m.scores(m.history(m.movie_ids[r])) for r in rows]))

    tried = {d: score(model)}
    for rank in SERVE_RANKS:
        if rank < d:
            tried[rank] = score(model.reduced(rank))
    floor = tried[d] * (1.0 - tolerance)
    chosen = min((r for r, v in tried.items() if v >= floor), default=d)
    return chosen, {str(r): v for r, v in sorted(tried.items())}


def _check_parity(model: Any, ranking: RankingModel, h: Histories) -> float:
    rows = [it for it in h.items if len(it)][:32]
    if not rows:
        return 0.0
    keras_scores = sequence_scores(model, rows, h.n_items, ranking.tau)
    numpy_scores = np.vstack([ranking.sequence_scores(ranking.history(h.movie_ids[r])) for r in rows])
    worst = float(np.max(np.abs(keras_scores - numpy_scores)))
    if worst > PARITY_TOLERANCE:
        raise ExportParityError(f"ranking export differs from the Keras model by {worst:.2e}")
    return worst


def fit_ranker(
    ratings: pd.DataFrame,
    params: RankerParams | Mapping[str, Any] | None = None,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    *,
    exclude_users: Collection[str] = (),
    choose_star_weights: StarWeightChooser | None = None,
) -> RankingModel:
    """Fit, choose on validation, refit on everything (when worth it: ``refit``) and export the
    ranking model for ``ratings``.

    ``exclude_users`` (user keys) are left out of the validation fit only, so that
    ``choose_star_weights`` can score them as new members with the validation model; the refit
    reads everyone.
    """
    p = params if isinstance(params, RankerParams) else RankerParams.from_overrides(params)
    started = time.perf_counter()
    counts = ratings["movie_id"].value_counts()
    ranked = np.sort(counts.index[counts >= p.min_count].to_numpy(dtype=np.int64))
    if not ranked.size:
        raise ValueError(f"ranker: no movie has {p.min_count} or more ratings to learn from")
    full = histories(ratings, ranked)
    base = _without(full, exclude_users)
    fit, relevant = carve_latest(base, p.val_last)
    rng = np.random.default_rng(seed)
    val_users = np.array(sorted(relevant), dtype=np.int64)
    n_val = min(p.val_users, max(500, VAL_SCORE_CELLS // fit.n_items))
    if val_users.size > n_val:
        val_users = np.sort(rng.choice(val_users, n_val, replace=False))
        fit = _restore_unscored(fit, base, val_users)
    val_rows = [fit.items[u] for u in val_users]
    log.info("ranker: %d users' histories in %.1f s", len(full.items), time.perf_counter() - started)

    def mean_ndcg(scores: np.ndarray) -> float:
        if not len(val_users):
            return float("nan")
        return float(
            np.mean(
                [
                    ndcg_of_scores(s, r, relevant[u])
                    for s, r, u in zip(scores, val_rows, val_users, strict=True)
                ]
            )
        )

    evaluate = (
        (lambda m: mean_ndcg(sequence_scores(m, val_rows, fit.n_items, p.tau))) if len(val_users) else None
    )
    model, best_epoch, curve = train_sequence(fit, p, seed, p.epochs, evaluate, on_epoch)

    items = _ease_items(fit, p)
    choice: dict[str, Any] = {
        "best_epoch": best_epoch,
        "val_ndcg_curve": curve,
        "ease_items": int(items.size),
    }
    lam, item_val, val_csr = p.ease_lambda, None, _no_item_part(fit.n_items)
    if items.size:

        def item_scores(csr: tuple) -> np.ndarray | None:
            if not val_rows:
                return None
            probe = _item_only(fit.movie_ids, csr, p.tau)
            scores = np.empty((len(val_rows), fit.n_items), dtype=np.float32)
            for i, r in enumerate(val_rows):
                scores[i] = probe.item_scores(probe.history(fit.movie_ids[r]))
            return scores

        # On a big catalogue lambda is chosen on the most-rated movies, then fitted once on all of
        # them; each gram is built only when needed, so the two are never held at once.
        grid = _ease_grid_items(fit, items)
        whole = grid.size == items.size
        g = _item_gram(fit, grid)
        tried: dict[float, float] = {}
        order = lambda c: (np.nan_to_num(tried[c], nan=-1.0), -c)  # noqa: E731
        for candidate in [lam] if lam is not None else EASE_LAMBDAS:
            csr = _item_part(g, grid, fit.n_items, candidate, p)
            scores = item_scores(csr)
            tried[candidate] = mean_ndcg(scores) if scores is not None else float("nan")
            if len(tried) == 1 or order(candidate) > order(lam):  # keep one score matrix, not all
                lam, val_csr = candidate, csr
                item_val = scores if whole else None  # on a grid, rescored once on every movie
            del scores
        del g
        if not whole:
            val_csr = _item_part(_item_gram(fit, items), items, fit.n_items, lam, p, last=True)
            item_val = item_scores(val_csr)
        choice["val_ndcg_ease"] = {str(k): v for k, v in tried.items()}
        log.info("ranker: EASE lambda %s chosen, %.1f s into the fit", lam, time.perf_counter() - started)
    choice["ease_lambda"] = lam

    blend = p.blend
    if blend is None and item_val is not None and len(val_users):
        # (scored after EASE, so the two score matrices are never beside its dense solve)
        zs, zi = _standardise(sequence_scores(model, val_rows, fit.n_items, p.tau)), _standardise(item_val)
        del item_val
        mixed = np.empty_like(zs)

        def blended(b: float) -> np.ndarray:
            np.multiply(zs, b, out=mixed)
            return np.add(mixed, zi, out=mixed)

        by_blend = {b: mean_ndcg(zs if b is None else blended(b)) for b in BLENDS}
        del zs, zi, mixed
        blend = max(BLENDS, key=lambda b: (by_blend[b], b is not None, b or 0))  # ties: more item-item
        choice["val_ndcg_blend"] = {str(k): v for k, v in by_blend.items()}
        choice["val_ndcg"] = by_blend[blend]
    elif item_val is None:
        blend = None
    choice["blend"] = blend
    val_model = _assemble(model, val_csr, fit, p, blend)
    rank = p.serve_rank
    if rank is None:
        rank, choice["val_ndcg_by_rank"] = _choose_rank(val_model, val_rows, mean_ndcg, p.rank_tolerance)
    choice["serve_rank"] = rank
    val_model = val_model.reduced(rank)
    star_table = p.star_weight_table()
    if choose_star_weights is not None:
        star_table, choice["newcomers"] = choose_star_weights(val_model)

    held_back = _n_ratings(full) - _n_ratings(fit)
    refit = p.refit if p.refit is not None else held_back >= REFIT_MIN_SHARE * _n_ratings(full)
    choice["held_back"], choice["refit"] = held_back, refit
    source, csr = fit, val_csr
    if refit:
        source = full
        model, _, _ = train_sequence(full, p, seed, max(1, best_epoch), None, on_epoch)
        items = _ease_items(full, p)
        if items.size and lam is not None:
            csr = _item_part(_item_gram(full, items), items, full.n_items, lam, p)
        else:
            csr = _no_item_part(full.n_items)
        log.info("ranker: refitted on every rating, %.1f s into the fit", time.perf_counter() - started)
    else:
        log.info("ranker: the validation fit is served (%d ratings were held back)", held_back)
    ranking = _assemble(model, csr, source, p, blend)
    choice["parity_max_abs_diff"] = _check_parity(model, ranking, source)  # before the projection
    ranking = ranking.reduced(rank)
    ranking.star_weights = star_table
    choice["fit_seconds"] = time.perf_counter() - started
    choice["params"] = p.to_dict()
    ranking.metrics = choice
    log.info(
        "ranker: epoch %s, EASE lambda %s, blend %s, %.1f s", best_epoch, lam, blend, choice["fit_seconds"]
    )
    return ranking
