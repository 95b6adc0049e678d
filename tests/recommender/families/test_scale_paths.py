"""The paths taken at ml-32m's size, exercised on small data with their thresholds lowered."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.families import keras_fit, ranker, ranker_keras, training
from recommender.families.base import KerasParams
from recommender.families.ranker_params import RankerParams
from recommender.families.sequences import histories
from recommender.scoring.itemitem import gram
from tests.recommender.families.test_ranker import SMALL, chain_hits, chains
from tests.recommender.families.test_training import SCALE, TINY, synthetic


def test_lazy_adam_is_adam_when_every_row_is_in_every_batch() -> None:
    """Keras's Adam on the dense gradient (duplicate rows summed, as the true gradient has them)."""
    import keras
    import tensorflow as tf

    from recommender.families.lazy_adam import lazy_adam

    start = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    rows = tf.constant([0, 1, 2, 3, 4, 2], dtype=tf.int64)  # every row, one twice
    results = []
    for optimizer in (keras.optimizers.Adam(0.1), lazy_adam(0.1)):
        table = keras.Variable(start.copy())
        for step in range(5):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table.value, rows) ** 2) * (step + 1)
            (grad,) = tape.gradient(loss, [table.value])
            assert isinstance(grad, tf.IndexedSlices)
            dense = isinstance(optimizer, keras.optimizers.Adam) and type(optimizer).__name__ == "Adam"
            optimizer.apply_gradients([(tf.convert_to_tensor(grad) if dense else grad, table)])
        results.append(np.asarray(table.value))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(results[0], start)


def test_float32_gram_of_a_binary_matrix_is_exact() -> None:
    x = (np.random.default_rng(1).random((3000, 50)) < 0.3).astype(np.float32)
    assert np.array_equal(gram(x), x.T.astype(np.float64) @ x.astype(np.float64))


def test_capped_examples_are_drawn_before_cutting() -> None:
    h = histories(chains(n_users=50, length=14))
    p = RankerParams(max_examples=30, cuts_per_rating=0.5, dropout=0.0)
    examples = ranker_keras._examples(h, p, np.random.default_rng(0))
    assert len(examples) == 30
    for history, later in examples:  # a chain's cut: the later movies follow the history
        assert later.size >= 1 and history.size >= 1 and later[0] == history[-1] + 1


def test_sampled_softmax_learns_what_comes_next_and_exports_with_parity(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ranker_keras, "SAMPLED_ABOVE", 10)
    monkeypatch.setattr(ranker_keras, "NEGATIVES", 16)
    monkeypatch.setattr(ranker_keras, "SAMPLED_BATCH", 64)
    model = ranker.fit_ranker(chains(), {**SMALL, "blend": None}, seed=0)
    assert model.metrics["parity_max_abs_diff"] < 1e-3
    hits = chain_hits(model)
    assert hits >= 10, f"the top 5 were the chain's next movies only {hits}/15 times"


def test_ease_lambda_chosen_on_the_most_rated_movies(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ranker, "GRID_MAX_ITEMS", 15)
    model = ranker.fit_ranker(chains(), {**SMALL, "epochs": 2, "ease_min_count": 1}, seed=0)
    info = model.metrics
    assert info["ease_items"] > 15
    assert float(info["ease_lambda"]) in ranker.EASE_LAMBDAS
    assert set(info["val_ndcg_ease"]) == {str(x) for x in ranker.EASE_LAMBDAS}
    assert info["parity_max_abs_diff"] < 1e-3


@pytest.mark.parametrize("family", ["hybrid", "mf"])
def test_rating_model_on_the_large_path_learns_and_exports(family: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(keras_fit, "LARGE_FIT_ROWS", 100)
    monkeypatch.setattr(keras_fit, "MAX_STEPS", 4)  # batches grow beyond the given 128
    train, _, movies = synthetic()
    result = training.train_model(train, movies, scale=SCALE, family=family, params=TINY[family], seed=0)
    assert result.metrics["export_max_abs_diff"] < 1e-4
    assert result.val_rmse < 1.0  # the taste groups' stars are 1 and 5: the mean alone is ~2


class _Weights:
    """What the epoch monitor reads of a Keras model: its weights and the stop flag."""

    def __init__(self) -> None:
        self.epoch, self.stop_training = 0, False

    def get_weights(self) -> list[int]:
        return [self.epoch]

    def set_weights(self, weights: list[int]) -> None:
        self.epoch = weights[0]


def _monitor_run(rmses: list[float], patience: int, min_gain: float) -> tuple[int, int, int]:
    """Epochs run, the best epoch and the epoch whose weights are kept, for a validation curve."""
    curve = iter(rmses)
    monitor = keras_fit._epoch_monitor(lambda: next(curve), KerasParams(), None, patience, min_gain)
    model = _Weights()
    monitor.set_model(model)
    for epoch in range(len(rmses)):
        model.epoch = epoch + 1
        monitor.on_epoch_end(epoch)
        if model.stop_training:
            break
    monitor.on_train_end()
    return epoch + 1, monitor.best_epoch, model.epoch


def test_at_scale_an_epoch_must_gain_a_share_of_the_rmse_but_the_best_weights_are_kept() -> None:
    # the 32M run's curve: epochs 4-10 gained 0.0003 in all, 2 minutes each
    curve = [0.8543, 0.8521, 0.85138, 0.85121, 0.85123, 0.85125, 0.85114, 0.8513]
    ran, best, kept = _monitor_run(curve, keras_fit.LARGE_PATIENCE, keras_fit.LARGE_MIN_GAIN)
    assert (ran, best, kept) == (3, 3, 3)  # epoch 3 gained 0.09%: kept, and the run stops there
    # small data: any gain counts and patience 3 waits past the flat stretch to the true best
    assert _monitor_run(curve, 3, 0.0) == (8, 7, 7)


def test_sparse_cooccurrence_counts_equal_the_dense_product(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ranker, "GRAM_BLOCK", 7)  # several column blocks, the last one short
    h = histories(chains(n_users=60, length=9))
    h.items[0] = np.concatenate([h.items[0], h.items[0][:2]])  # a movie rated twice counts once
    items = np.sort(np.random.default_rng(0).choice(h.n_items, 25, replace=False))
    local = np.full(h.n_items, -1)
    local[items] = np.arange(items.size)
    x = np.zeros((len(h.items), items.size), np.float64)
    for u, it in enumerate(h.items):
        x[u, local[it][local[it] >= 0]] = 1.0
    g = ranker._item_gram(h, items)
    assert g.dtype == np.float64 and np.array_equal(g, x.T @ x)


def test_the_validation_fit_is_served_when_it_held_back_a_sliver(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = chains()
    refitted = ranker.fit_ranker(data, SMALL, seed=0)
    assert refitted.metrics["refit"] is True  # each user's latest ten of fourteen: far above 1%
    monkeypatch.setattr(ranker, "REFIT_MIN_SHARE", 0.99)
    kept = ranker.fit_ranker(data, SMALL, seed=0)
    assert kept.metrics["refit"] is False
    assert kept.metrics["parity_max_abs_diff"] < 1e-3
    assert chain_hits(kept) >= 10
    assert ranker.fit_ranker(data, {**SMALL, "refit": "true"}, seed=0).metrics["refit"] is True


def test_only_the_scored_validation_users_are_held_back_when_they_are_a_sample() -> None:
    data = chains()  # 120 users of 14 ratings: each holds back its latest 7 (half) when carved
    every = ranker.fit_ranker(data, {**SMALL, "epochs": 1}, seed=0).metrics
    sampled = ranker.fit_ranker(data, {**SMALL, "epochs": 1, "val_users": 10}, seed=0).metrics
    # (a few of the chains' first and last movies have too few ratings to be ranked)
    assert 110 * 7 < every["held_back"] <= 120 * 7
    assert 0 < sampled["held_back"] <= 10 * 7  # the other 110 train on their whole histories


def test_after_a_large_fit_nothing_keeps_the_training_rows_alive(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gc
    import weakref

    from recommender.families import get_family, make_params
    from recommender.features.encoding import encode

    monkeypatch.setattr(keras_fit, "LARGE_FIT_ROWS", 100)
    monkeypatch.setattr(keras_fit, "MAX_STEPS", 4)
    train, _, movies = synthetic()
    params = make_params("hybrid", {**TINY["hybrid"], "epochs": 2})
    enc = encode(train, movies, params.val_fraction, 0)
    rows = weakref.ref(enc.users)
    fitted = get_family("hybrid").fit(params, enc, SCALE, 0, None)
    del enc
    gc.collect()
    assert fitted.model is not None
    assert rows() is None, "the Keras model still reaches the encoding's per-rating arrays"
