"""The Keras half of the ranking model: a softmax over the catalogue, trained on "what comes next".

A training example cuts a user's history at a random point: the movies before the cut (some
dropped at random) are the input, read as two sparse bags (uniform, and weighted by recency), and
the next ``window`` movies are the soft target. Early stopping watches NDCG@5 on validation users.

Above ``SAMPLED_ABOVE`` movies the training softmax is sampled: each batch shares ``NEGATIVES``
movies drawn by popularity, with the log-Q correction, and Adam moves only the rows a batch read
(``lazy_adam``); a full softmax and a dense Adam step over tens of thousands of movies cost more
than the rest of the retrain. The model is the same, so its exported scores are exact either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recommender.families.base import EpochCallback
from recommender.families.ranker_params import RankerParams
from recommender.families.sequences import Histories
from recommender.scoring.ranking import recency_weights

log = logging.getLogger(__name__)

__all__ = ["sequence_scores", "train_sequence"]

SAMPLED_ABOVE = 20_000
NEGATIVES = 1024
#: ... and batches of at least this many examples, the learning rate scaled by the square root of
#: the batch's growth: a step's cost there is mostly fixed (the tables' sparse updates), not per example
SAMPLED_BATCH = 256
#: ... and each example reads at most this many of the latest movies before its cut: an example's
#: cost is its history's length, and heavy users have thousands (the recency bag is unchanged by it)
SAMPLED_HISTORY = 100
#: negatives are drawn in proportion to count ** POPULARITY_POWER (flatter than the targets)
POPULARITY_POWER = 0.75


def _build(n_items: int, dim: int, seed: int) -> Any:
    import keras
    import tensorflow as tf

    class SequenceRanker(keras.Model):
        """logits = out @ (X_all in_all + X_recent in_recent) + out_bias; X are sparse bags."""

        def __init__(self) -> None:
            super().__init__()
            init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
            self.in_all = self.add_weight(shape=(n_items, dim), initializer=init, name="in_all")
            self.in_recent = self.add_weight(shape=(n_items, dim), initializer=init, name="in_recent")
            self.out_emb = self.add_weight(shape=(n_items, dim), initializer=init, name="out")
            self.out_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="out_bias")

        def call(self, x_all: Any, x_recent: Any) -> Any:
            h = tf.sparse.sparse_dense_matmul(x_all, self.in_all) + tf.sparse.sparse_dense_matmul(
                x_recent, self.in_recent
            )
            return tf.matmul(h, self.out_emb, transpose_b=True) + self.out_bias

    return SequenceRanker()


def _bags(rows: list[np.ndarray], n_items: int, tau: float) -> tuple[Any, Any]:
    """Two SparseTensors (uniform and recency-weighted bags) for histories ``rows``."""
    import tensorflow as tf

    idx, va, vr = [], [], []
    for r, items in enumerate(rows):
        n = len(items)
        if n == 0:
            continue
        idx.append(np.stack([np.full(n, r), items], axis=1))
        va.append(np.full(n, 1.0 / np.sqrt(n), dtype=np.float32))
        vr.append(recency_weights(n, tau))
    shape = (len(rows), n_items)
    if not idx:
        empty = tf.sparse.SparseTensor(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), shape)
        return empty, empty
    ind = np.concatenate(idx).astype(np.int64)
    order = np.lexsort((ind[:, 1], ind[:, 0]))
    ind = ind[order]
    make = lambda v: tf.sparse.SparseTensor(ind, np.concatenate(v)[order], shape)  # noqa: E731
    return make(va), make(vr)


def _examples(h: Histories, p: RankerParams, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch's (input history, later movies) pairs, cut at random points of each history."""
    lengths = h.lengths()
    cuts = np.where(lengths >= 2, np.clip(np.round(lengths * p.cuts_per_rating), 1, p.max_cuts), 0)
    if cuts.sum() > p.max_examples:
        # Beyond the cap, draw which users' cuts to make first: making every cut and keeping a
        # sample costs seconds and GiBs an epoch at millions of ratings.
        chosen = rng.choice(int(cuts.sum()), p.max_examples, replace=False)
        owners = np.searchsorted(np.cumsum(cuts), chosen, side="right")
        return [_cut(h.items[u], p, rng) for u in owners]
    out = [_cut(items, p, rng) for items, k in zip(h.items, cuts, strict=True) for _ in range(int(k))]
    order = rng.permutation(len(out))[: p.max_examples]
    return [out[i] for i in order]


def _cut(items: np.ndarray, p: RankerParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(items)
    cut = int(rng.integers(max(1, n // 4), n))
    history = items[:cut]
    if p.dropout and len(history) > 1:
        kept = history[rng.random(len(history)) >= p.dropout]
        history = kept if len(kept) else history[-1:]
    return history, items[cut : cut + p.window]


def sequence_scores(model: Any, rows: list[np.ndarray], n_items: int, tau: float) -> np.ndarray:
    """The Keras part's scores of every movie for each history in ``rows`` (float32, filled in
    place: no list of chunks beside the result)."""
    out = np.empty((len(rows), n_items), dtype=np.float32)
    for s in range(0, len(rows), 256):
        xa, xr = _bags(rows[s : s + 256], n_items, tau)
        out[s : s + 256] = np.asarray(model(xa, xr))
    return out


def _sampled_step(model: Any, optimizer: Any) -> Any:
    """A training step whose softmax runs over the batch's targets and shared sampled negatives."""
    import tensorflow as tf

    def bag(x: Any, table: Any) -> Any:
        # gathers, not a sparse matmul, so the gradient is sparse rows (IndexedSlices)
        rows = tf.gather(table, x.indices[:, 1]) * x.values[:, None]
        return tf.math.unsorted_segment_sum(rows, x.indices[:, 0], x.dense_shape[0])

    spec = tf.SparseTensorSpec(shape=[None, None], dtype=tf.float32)
    ints, floats = tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([None, None], tf.float32)
    vector = tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.float32)

    @tf.function(
        input_signature=[spec, spec, ints, floats, *vector],
        reduce_retracing=True,
    )
    def step(xa: Any, xr: Any, targets: Any, weights: Any, negatives: Any, log_q: Any) -> Any:
        # targets (B, window) padded with 0 at weight 0; log_q: log expected count of each movie
        # Gathers from the variables themselves: reading a whole table would make each sparse
        # update copy it first (the read still holds the old buffer).
        in_all, in_recent, out, bias = (
            v.value for v in (model.in_all, model.in_recent, model.out_emb, model.out_bias)
        )
        with tf.GradientTape() as tape:
            h = bag(xa, in_all) + bag(xr, in_recent)
            pos = tf.einsum("bd,bwd->bw", h, tf.gather(out, targets)) + tf.gather(bias, targets)
            neg = tf.matmul(h, tf.gather(out, negatives), transpose_b=True)
            neg += tf.gather(bias, negatives) - tf.gather(log_q, negatives)
            hit = tf.reduce_any(
                (targets[:, :, None] == negatives[None, None, :]) & (weights[:, :, None] > 0), axis=1
            )
            neg = tf.where(hit, -1e9, neg)  # a sampled movie that is a target is not a negative
            pos_q = tf.where(weights > 0, pos - tf.gather(log_q, targets), -1e9)
            lse = tf.reduce_logsumexp(tf.concat([pos_q, neg], axis=1), axis=1)
            loss = tf.reduce_mean(lse - tf.reduce_sum(weights * (pos - tf.gather(log_q, targets)), axis=1))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return step


def _popularity(h: Histories) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative sampling distribution, log of NEGATIVES x each movie's probability)."""
    counts = np.bincount(np.concatenate(h.items), minlength=h.n_items) if h.items else np.zeros(h.n_items)
    q = (counts + 1.0) ** POPULARITY_POWER
    q /= q.sum()
    return np.cumsum(q), np.log(NEGATIVES * q).astype(np.float32)


def _padded(batch: list[tuple[np.ndarray, np.ndarray]], window: int) -> tuple[np.ndarray, np.ndarray]:
    targets = np.zeros((len(batch), window), dtype=np.int64)
    weights = np.zeros((len(batch), window), dtype=np.float32)
    for r, (_, t) in enumerate(batch):
        targets[r, : len(t)] = t
        weights[r, : len(t)] = 1.0 / len(t)
    return targets, weights


def train_sequence(
    h: Histories,
    p: RankerParams,
    seed: int,
    epochs: int,
    evaluate: Callable[[Any], float] | None,
    on_epoch: EpochCallback | None,
) -> tuple[Any, int, list[float]]:
    """Fit the Keras part for up to ``epochs``; early-stopped on ``evaluate`` (NDCG) when given."""
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = _build(h.n_items, p.dim, seed)
    sampled = h.n_items > SAMPLED_ABOVE
    if sampled:
        from recommender.families.lazy_adam import lazy_adam

        batch_size = max(p.batch_size, SAMPLED_BATCH)
        optimizer = lazy_adam(p.lr * (batch_size / p.batch_size) ** 0.5)
        sampled_step = _sampled_step(model, optimizer)
        cdf, log_q = _popularity(h)
    else:
        batch_size = p.batch_size
        optimizer = keras.optimizers.Adam(learning_rate=p.lr)
    spec = tf.SparseTensorSpec(shape=[None, h.n_items], dtype=tf.float32)

    @tf.function(
        input_signature=[spec, spec, tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([None], tf.float32)],
        reduce_retracing=True,
    )
    def step(xa: Any, xr: Any, target_at: Any, target_w: Any) -> Any:
        with tf.GradientTape() as tape:
            logits = model(xa, xr)
            lse = tf.reduce_logsumexp(logits, axis=1)
            hit = tf.gather_nd(logits, target_at) * target_w
            loss = tf.reduce_mean(lse) - tf.reduce_sum(hit) / tf.cast(tf.shape(logits)[0], tf.float32)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    best, best_epoch, waited, history = -1.0, 0, 0, []
    best_weights = None
    for epoch in range(1, epochs + 1):
        losses = []
        examples = _examples(h, p, rng)
        for s in range(0, len(examples), batch_size):
            batch = examples[s : s + batch_size]
            if sampled:
                xa, xr = _bags([b[0][-SAMPLED_HISTORY:] for b in batch], h.n_items, p.tau)
                negatives = np.minimum(np.searchsorted(cdf, rng.random(NEGATIVES)), h.n_items - 1)
                losses.append(float(sampled_step(xa, xr, *_padded(batch, p.window), negatives, log_q)))
                continue
            xa, xr = _bags([b[0] for b in batch], h.n_items, p.tau)
            at = np.concatenate([np.stack([np.full(len(t), r), t], axis=1) for r, (_, t) in enumerate(batch)])
            w = np.concatenate([np.full(len(t), 1.0 / len(t), dtype=np.float32) for _, t in batch])
            losses.append(float(step(xa, xr, at.astype(np.int64), w)))
        loss = float(np.mean(losses)) if losses else float("nan")
        score = evaluate(model) if evaluate is not None else float("nan")
        history.append(score)
        if on_epoch is not None:
            shown = None if np.isnan(score) else score
            on_epoch({"epoch": epoch, "epochs": epochs, "loss": loss, "val_ndcg": shown, "stage": "ranking"})
        if evaluate is None:
            best_epoch = epoch
            continue
        if score > best:
            best, best_epoch, waited = score, epoch, 0
            best_weights = [v.numpy().copy() for v in model.trainable_variables]
        else:
            waited += 1
            if waited >= p.patience:
                break
    if best_weights is not None:
        for v, w in zip(model.trainable_variables, best_weights, strict=True):
            v.assign(w)
    log.info(
        "ranker Keras part: %d epochs in %.1f s, %s softmax over %d movies",
        len(history),
        time.perf_counter() - started,
        "sampled" if sampled else "full",
        h.n_items,
    )
    return model, best_epoch, history
