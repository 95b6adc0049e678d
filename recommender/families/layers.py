"""Keras models of the families (layers only: each family's module fits and exports its model).

The Keras families are mf, mlp, hybrid and classifier. The ``bpmf`` family has no model of its own:
its factors are sampled in numpy (``bpmf.py``) and loaded into :func:`build_mf` as a container.

Every model takes a dict of inputs ``{"user": int32 (batch,), "movie": int32 (batch,)}`` with dense
indices (the id maps live next to the model), plus ``"features": float32 (batch, F)`` for ``hybrid``.
The regression families output ``(batch, 1)`` on the rating scale (unclipped, so gradients never die
at the edges; serving clips); ``classifier`` outputs ``(batch, n_classes)`` probabilities.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
from keras import layers, regularizers

from recommender.families.base import HYBRID_VARIANTS

log = logging.getLogger(__name__)

__all__ = ["HYBRID_VARIANTS", "build_classifier", "build_hybrid", "build_mf", "build_mlp"]


def _index_input(name: str) -> keras.KerasTensor:
    return keras.Input(shape=(), dtype="int32", name=name)


def _embedding(n: int, dim: int, l2: float, name: str, seed: int) -> layers.Embedding:
    # An *activity* regularizer penalises only the rows looked up in the batch (normalised by batch
    # size), i.e. each user/movie is shrunk in proportion to how often it appears - the classic
    # SGD-style regularisation of biased MF, which generalises better here than a penalty on the
    # whole matrix every step (that one crushes rare movies and barely touches popular ones).
    return layers.Embedding(
        n,
        dim,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
        activity_regularizer=regularizers.L2(l2) if l2 > 0 else None,
        name=name,
    )


def _bias(n: int, l2: float, name: str) -> layers.Embedding:
    return layers.Embedding(
        n,
        1,
        embeddings_initializer="zeros",
        activity_regularizer=regularizers.L2(l2) if l2 > 0 else None,
        name=name,
    )


def _flat(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return layers.Reshape((-1,), name=name)(x)


def build_mf(
    n_users: int,
    n_movies: int,
    *,
    global_mean: float,
    dim: int = 32,
    l2: float = 0.05,
    bias_l2: float = 0.005,
    seed: int = 0,
) -> keras.Model:
    """Biased matrix factorisation: ``mu + b_u + b_i + <p_u, q_i>`` with a per-row dot product."""
    user, movie = _index_input("user"), _index_input("movie")
    p = _flat(_embedding(n_users, dim, l2, "user_embedding", seed)(user), "p")
    q = _flat(_embedding(n_movies, dim, l2, "movie_embedding", seed + 1)(movie), "q")
    bu = _flat(_bias(n_users, bias_l2, "user_bias")(user), "bu")
    bi = _flat(_bias(n_movies, bias_l2, "movie_bias")(movie), "bi")
    # (batch, 1): one dot per row, never across the batch
    dot = layers.Dot(axes=1, name="dot")([p, q])
    out = layers.Add(name="sum")([dot, bu, bi])
    out = layers.Rescaling(1.0, offset=global_mean, name="rating")(out)
    return keras.Model({"user": user, "movie": movie}, out, name="mf")


def build_hybrid(
    n_users: int,
    n_movies: int,
    n_features: int,
    *,
    global_mean: float,
    dim: int = 32,
    l2: float = 0.05,
    bias_l2: float = 0.005,
    feature_l2: float = 1e-4,
    variant: str = "full",
    seed: int = 0,
) -> keras.Model:
    """MF whose movie side adds a linear map of the movie's features.

    The features (see ``encoding.encode``) are genres, year, the movie's shrunk average rating and
    its log rating count in the training data.

    ``variant="no_user"`` drops the user embedding and bias (what a brand-new member gets: the
    movie's expected rating); ``variant="no_movie"`` drops the movie embedding and bias, so a movie
    is represented by its features alone (what a movie outside the training data gets). The feature
    map is linear on purpose: the item vector stays ``q_i + W f_i``, so the model exports to the same
    numpy arrays as ``mf``.
    """
    if variant not in HYBRID_VARIANTS:
        raise ValueError(f"hybrid variant must be one of {HYBRID_VARIANTS}, got {variant!r}")
    user, movie = _index_input("user"), _index_input("movie")
    features = keras.Input(shape=(n_features,), dtype="float32", name="features")
    reg = regularizers.L2(feature_l2) if feature_l2 > 0 else None
    fq = layers.Dense(dim, use_bias=False, kernel_regularizer=reg, name="feature_factors")(features)
    fb = layers.Dense(1, use_bias=False, kernel_regularizer=reg, name="feature_bias")(features)
    if variant == "no_movie":
        q, bi = fq, fb
    else:
        q_emb = _flat(_embedding(n_movies, dim, l2, "movie_embedding", seed + 1)(movie), "q_emb")
        q = layers.Add(name="q")([q_emb, fq])
        bi = layers.Add(name="bi")([_flat(_bias(n_movies, bias_l2, "movie_bias")(movie), "bi_emb"), fb])
    if variant == "no_user":
        out = bi
    else:
        p = _flat(_embedding(n_users, dim, l2, "user_embedding", seed)(user), "p")
        bu = _flat(_bias(n_users, bias_l2, "user_bias")(user), "bu")
        dot = layers.Dot(axes=1, name="dot")([p, q])
        out = layers.Add(name="sum")([dot, bu, bi])
    out = layers.Rescaling(1.0, offset=global_mean, name="rating")(out)
    return keras.Model({"user": user, "movie": movie, "features": features}, out, name=f"hybrid_{variant}")


def _tower(
    n_users: int, n_movies: int, dim: int, l2: float, hidden: Sequence[int], dropout: float, seed: int
) -> tuple[keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
    user, movie = _index_input("user"), _index_input("movie")
    p = _flat(_embedding(n_users, dim, l2, "user_embedding", seed)(user), "p")
    q = _flat(_embedding(n_movies, dim, l2, "movie_embedding", seed + 1)(movie), "q")
    x = layers.Concatenate(name="concat")([p, q])
    for i, width in enumerate(hidden):
        x = layers.Dense(
            width,
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed + 10 + i),
            name=f"dense_{i}",
        )(x)
        if dropout > 0:
            x = layers.Dropout(dropout, seed=seed + 20 + i, name=f"dropout_{i}")(x)
    return user, movie, x


def build_mlp(
    n_users: int,
    n_movies: int,
    *,
    global_mean: float,
    dim: int = 32,
    l2: float = 0.02,
    hidden: Sequence[int] = (64, 32),
    dropout: float = 0.2,
    seed: int = 0,
) -> keras.Model:
    """Concatenated user and movie embeddings through dense layers with dropout."""
    user, movie, x = _tower(n_users, n_movies, dim, l2, hidden, dropout, seed)
    out = layers.Dense(1, name="head")(x)
    out = layers.Rescaling(1.0, offset=global_mean, name="rating")(out)
    return keras.Model({"user": user, "movie": movie}, out, name="mlp")


def build_classifier(
    n_users: int,
    n_movies: int,
    n_classes: int,
    *,
    dim: int = 32,
    l2: float = 0.02,
    hidden: Sequence[int] = (64, 32),
    dropout: float = 0.2,
    seed: int = 0,
) -> keras.Model:
    """Dense layers ending in a softmax over the rating classes (prediction = expected rating)."""
    user, movie, x = _tower(n_users, n_movies, dim, l2, hidden, dropout, seed)
    out = layers.Dense(n_classes, activation="softmax", name="classes")(x)
    return keras.Model({"user": user, "movie": movie}, out, name="classifier")
