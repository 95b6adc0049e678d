"""The Keras half of the ranking model: a softmax over the catalogue, trained on "what comes next".

A training example cuts a user's history at a random point: the movies before the cut (some
dropped at random) are the input, read as two sparse bags (uniform, and weighted by recency), and
the next ``window`` movies are the soft target. Early stopping watches NDCG@5 on validation users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recommender.families.base import EpochCallback
from recommender.families.ranker_params import RankerParams
from recommender.families.sequences import Histories
from recommender.scoring.ranking import recency_weights

__all__ = ["sequence_scores", "train_sequence"]


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
    out = []
    for items in h.items:
        n = len(items)
        if n < 2:
            continue
        for _ in range(min(p.max_cuts, max(1, round(n * p.cuts_per_rating)))):
            cut = int(rng.integers(max(1, n // 4), n))
            history = items[:cut]
            if p.dropout and len(history) > 1:
                kept = history[rng.random(len(history)) >= p.dropout]
                history = kept if len(kept) else history[-1:]
            out.append((history, items[cut : cut + p.window]))
    order = rng.permutation(len(out))[: p.max_examples]
    return [out[i] for i in order]


def sequence_scores(model: Any, rows: list[np.ndarray], n_items: int, tau: float) -> np.ndarray:
    chunks = []
    for s in range(0, len(rows), 256):
        xa, xr = _bags(rows[s : s + 256], n_items, tau)
        chunks.append(np.asarray(model(xa, xr)))
    return np.vstack(chunks) if chunks else np.zeros((0, n_items), dtype=np.float32)


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

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = _build(h.n_items, p.dim, seed)
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
        for s in range(0, len(examples), p.batch_size):
            batch = examples[s : s + p.batch_size]
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
    return model, best_epoch, history
