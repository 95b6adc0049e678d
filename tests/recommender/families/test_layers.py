"""Shapes and wiring of the Keras model families (no training here: see test_training.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from recommender.families import layers as models


def _batch(n: int, n_users: int = 6, n_movies: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "user": rng.integers(0, n_users, n).astype("int32"),
        "movie": rng.integers(0, n_movies, n).astype("int32"),
    }


def test_mf_dot_is_per_row_with_output_shape_batch_by_one() -> None:
    model = models.build_mf(6, 5, global_mean=3.5, dim=4, seed=1)
    x = _batch(7)
    out = np.asarray(model(x, training=False))
    assert out.shape == (7, 1)
    # The output must be mu + b_u + b_i + <p_u, q_i> row by row - a tensordot over the batch
    # (the Keras example's bug) would give every row the same cross-batch sum.
    rng = np.random.default_rng(2)
    P, Q = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    bu, bi = rng.normal(size=(6, 1)), rng.normal(size=(5, 1))
    model.get_layer("user_embedding").set_weights([P])
    model.get_layer("movie_embedding").set_weights([Q])
    model.get_layer("user_bias").set_weights([bu])
    model.get_layer("movie_bias").set_weights([bi])
    out = np.asarray(model(x, training=False))[:, 0]
    u, m = x["user"], x["movie"]
    expected = 3.5 + bu[u, 0] + bi[m, 0] + np.einsum("ij,ij->i", P[u], Q[m])
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("variant", models.HYBRID_VARIANTS)
def test_hybrid_variants_shape_and_which_embeddings_exist(variant: str) -> None:
    model = models.build_hybrid(6, 5, 3, global_mean=3.0, dim=4, variant=variant)
    x = _batch(9) | {"features": np.ones((9, 3), dtype="float32")}
    assert np.asarray(model(x, training=False)).shape == (9, 1)
    names = {layer.name for layer in model.layers}
    assert ("user_embedding" in names) == (variant != "no_user")
    assert ("movie_bias" in names) == (variant != "no_movie")
    # without a user vector there is nothing to dot a movie vector with
    assert ("movie_embedding" in names) == (variant == "full")
    assert "feature_bias" in names


def test_hybrid_rejects_unknown_variant() -> None:
    with pytest.raises(ValueError, match="variant"):
        models.build_hybrid(2, 2, 1, global_mean=3.0, variant="both")


def test_mlp_has_dropout_and_one_output() -> None:
    model = models.build_mlp(6, 5, global_mean=3.0, dim=4, hidden=(8, 4), dropout=0.3)
    assert np.asarray(model(_batch(5), training=False)).shape == (5, 1)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_classifier_outputs_a_distribution_over_rating_classes() -> None:
    model = models.build_classifier(6, 5, 10, dim=4, hidden=(8,))
    out = np.asarray(model(_batch(4), training=False))
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert (out >= 0).all()
