"""Training: every family learns an obvious signal, early stopping, export parity, progress, plots."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from recommender.core.types import RatingScale, member_key, ml_key
from recommender.families import FAMILIES, SERVABLE_FAMILIES, get_family, training
from recommender.families.adapter import KerasRecommender
from recommender.families.base import ExportParityError, TrainResult
from recommender.families.keras_fit import plot_loss

SCALE = RatingScale(1.0, 5.0, 1.0)
FAST = {"epochs": 25, "batch_size": 128, "lr": 0.03, "patience": 5, "dim": 8, "rank_weight": 0.0}
TINY = {
    "mf": {**FAST, "l2": 0.01, "bias_l2": 0.001},
    "hybrid": {**FAST, "l2": 0.01, "bias_l2": 0.001},
    "mlp": {**FAST, "l2": 1e-4, "hidden": "32", "dropout": 0.0, "lr": 0.01},
    "classifier": {**FAST, "l2": 1e-4, "hidden": "32", "dropout": 0.0, "lr": 0.01},
    "bpmf": {"sweeps": 30, "burn": 10, "sampler_dim": 4, "rank": 8, "rank_weight": 0.0},
}


def synthetic(
    n_users: int = 40, n_movies: int = 30, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two taste groups: even users love even movies (5) and hate odd ones (1), odd users the reverse.

    Returns (train, held-out pairs, movies); the held-out pairs are never seen in training, so
    predicting them right needs the user-movie interaction, not just biases.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for m in range(1, n_movies + 1):
            rows.append((u, m, 5.0 if (u % 2) == (m % 2) else 1.0, int(rng.integers(0, 10**6))))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    held = rng.random(len(frame)) < 0.25
    movies = pd.DataFrame(
        {
            "movie_id": np.arange(1, n_movies + 1, dtype=np.int32),
            "title": [f"M{m}" for m in range(1, n_movies + 1)],
            "year": pd.array([1980 + m for m in range(1, n_movies + 1)], dtype="Int64"),
            "genres": [("Comedy",) if m % 2 == 0 else ("Drama",) for m in range(1, n_movies + 1)],
        }
    )
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True), movies


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return synthetic()


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_learns_the_taste_groups(family: str, data) -> None:  # type: ignore[no-untyped-def]
    train, held, movies = data
    rec = KerasRecommender(family, TINY[family], seed=0, scale=SCALE).fit(train, movies)
    pred = rec.predict(held["user_id"].to_numpy(), held["movie_id"].to_numpy())
    likes = held["rating"].to_numpy() == 5.0
    # Unseen pairs: liked ones must be predicted far above disliked ones (biases alone give ~3 for both).
    assert pred[likes].mean() - pred[~likes].mean() > 2.0, (family, pred[likes].mean(), pred[~likes].mean())
    assert float(np.sqrt(np.mean((pred - held["rating"].to_numpy()) ** 2))) < 1.0
    res = rec.result
    assert res is not None and res.val_rmse < 1.2
    assert (res.serving is not None) == (family in SERVABLE_FAMILIES)
    # the served ranking puts the user's own group first
    user = 2
    seen = set(train.loc[train["user_id"] == user, "movie_id"])
    top = rec.recommend(user, 5, seen)
    assert len(top) == 5 and not seen & set(top)
    assert all(m % 2 == 0 for m in top), top


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "no_user", "no_movie"])
def test_export_parity_for_every_servable_model(variant: str, data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    params = {**TINY["hybrid"], "epochs": 3, "variant": variant}
    res = training.train_model(train, movies, scale=SCALE, family="hybrid", params=params, seed=1)
    _check_parity(res)


@pytest.mark.slow
def test_mf_export_parity_and_metrics(data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    params = {**TINY["mf"], "epochs": 3}
    res = training.train_model(train, movies, scale=SCALE, family="mf", params=params, seed=2)
    assert res.serving is not None and res.serving.dim == params["dim"]
    _check_parity(res)
    assert res.metrics["export_max_abs_diff"] < 1e-4
    for key in ("val_rmse", "val_mae", "n_ratings", "n_users", "n_movies", "epochs_run", "best_epoch"):
        assert key in res.metrics
    assert res.metrics["n_ratings"] == len(train)
    assert 0 < res.serving.trained_at <= time.time()


def _check_parity(res: TrainResult) -> None:
    """Independent check: Keras on random (user, movie) pairs vs the served numpy prediction."""
    enc, serving = res.encoded, res.serving
    assert enc is not None and serving is not None
    rng = np.random.default_rng(0)
    u = rng.integers(0, len(enc.user_keys), 300)
    m = rng.integers(0, len(enc.movie_ids), 300)
    x = get_family(res.family).inputs(enc, u, m)
    keras_out = np.asarray(res.model(x, training=False), dtype=np.float64)[:, 0]
    numpy_out = np.array(
        [
            serving.raw_scores(serving.user_vector(enc.user_keys[a]), np.array([b]))[0]  # type: ignore[arg-type]
            for a, b in zip(u, m, strict=True)
        ]
    )
    assert np.max(np.abs(keras_out - numpy_out)) < 1e-4


def test_parity_check_rejects_arrays_that_drift(data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    from recommender.families import mf

    real = mf.factor_arrays

    def drifting(*args, **kwargs):  # type: ignore[no-untyped-def]
        P, bu, Q, bi = real(*args, **kwargs)
        return P, bu, Q, bi + 1e-3

    monkeypatch.setattr(mf, "factor_arrays", drifting)
    with pytest.raises(ExportParityError, match="differ"):
        training.train_model(
            train, movies, scale=SCALE, family="mf", params={**TINY["mf"], "epochs": 1}, seed=0
        )


def test_validation_slice_comes_from_training_data_and_early_stopping_reports_progress(data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    events: list[dict] = []
    params = {**TINY["mf"], "epochs": 25, "patience": 2, "l2": 0.0, "bias_l2": 0.0, "dim": 16}
    res = training.train_model(
        train, movies, scale=SCALE, family="mf", params=params, seed=0, on_epoch=events.append
    )
    enc = res.encoded
    assert enc is not None
    assert len(np.intersect1d(enc.fit, enc.val)) == 0
    assert len(enc.fit) + len(enc.val) == len(train)
    assert len(enc.val) == round(len(train) * res.params.val_fraction)
    assert [e["epoch"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["epochs"] == 25 and {"loss", "val_loss", "val_rmse"} <= set(e) for e in events)
    assert len(res.history["loss"]) == len(res.history["val_rmse"]) == len(events)
    # restored weights are the best epoch's, not the last one's (final RMSE is clipped: <= raw best)
    best = int(np.argmin(res.history["val_rmse"]))
    assert res.metrics["best_epoch"] == best + 1
    assert res.val_rmse <= res.history["val_rmse"][best] + 1e-6
    # unregularised on a tiny slice it overfits, so it must stop early: `patience` epochs after the best
    assert len(events) < 25
    assert len(events) == res.metrics["best_epoch"] + 2


def test_member_keys_reach_the_serving_model(data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    frame = train.assign(user_key=train["user_id"].map(ml_key))
    frame.loc[frame["user_id"] == 1, "user_key"] = member_key(10**17)
    res = training.train_model(
        frame, movies, scale=SCALE, family="mf", params={**TINY["mf"], "epochs": 1}, seed=0
    )
    assert res.serving is not None
    assert res.serving.user_vector(member_key(10**17)) is not None
    assert res.serving.user_vector(ml_key(1)) is None and res.serving.user_vector(ml_key(2)) is not None


def test_unknown_family_or_parameter_is_a_clear_error(data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    with pytest.raises(ValueError, match="unknown model family"):
        training.train_model(train, movies, scale=SCALE, family="svd")
    with pytest.raises(ValueError, match="no parameter 'depth'"):
        training.train_model(train, movies, scale=SCALE, family="mf", params={"depth": 3})
    with pytest.raises(ValueError, match="no ratings"):
        training.train_model(train.iloc[:0], movies, scale=SCALE, family="mf")


def test_plot_loss_writes_a_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    history = {
        "loss": [1.2, 0.9, 0.8],
        "val_loss": [1.3, 1.0, 1.0],
        "val_rmse": [1.1, 0.95, 0.96],
    }
    path = plot_loss(history, tmp_path / "sub" / "loss.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


@pytest.mark.slow
def test_saved_keras_model_reloads_with_the_same_predictions(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import keras

    train, _, movies = data
    params = {**TINY["hybrid"], "epochs": 2}
    res = training.train_model(train, movies, scale=SCALE, family="hybrid", params=params, seed=0)
    res.model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    enc = res.encoded
    assert enc is not None
    x = get_family("hybrid").inputs(enc, enc.users[:50], enc.movies[:50])
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(res.model(x)), atol=1e-6)
