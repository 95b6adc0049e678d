"""The paths taken at ml-32m's size, exercised on small data with their thresholds lowered."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.families import keras_fit, ranker, ranker_keras, training
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
