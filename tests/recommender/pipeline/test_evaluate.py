"""The comparison run behind train.py --evaluate: every name and metric, clear errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recommender.core.types import RatingScale
from recommender.pipeline import evaluate


@dataclass
class FakeDataset:
    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    scale: RatingScale


def _taste_dataset() -> FakeDataset:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, 31):
        for m in rng.choice(np.arange(1, 41), 25, replace=False):
            rows.append((u, int(m), 5.0 if u % 2 == m % 2 else 1.0, int(rng.integers(0, 10**6))))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    movies = pd.DataFrame(
        {
            "movie_id": np.arange(1, 41, dtype=np.int32),
            "title": [f"M{m}" for m in range(1, 41)],
            "year": pd.array([2000] * 40, dtype="Int64"),
            "genres": [("Drama",)] * 40,
        }
    )
    return FakeDataset("tiny", ratings, movies, RatingScale(1.0, 5.0, 1.0))


@pytest.mark.slow
def test_run_evaluation_reports_every_name_and_metric() -> None:
    ds = _taste_dataset()
    params = {
        "epochs": 20,
        "batch_size": 128,
        "lr": 0.03,
        "dim": 8,
        "l2": 0.01,
        "bias_l2": 0.001,
    }
    messages: list[str] = []
    result = evaluate.run_evaluation(ds, "random", "mf", params, seed=3, on_progress=messages.append)
    assert {k: result[k] for k in ("dataset", "protocol", "seed")} == {
        "dataset": "tiny",
        "protocol": "random",
        "seed": 3,
    }
    assert set(result["results"]) == {
        "model",
        "global_mean",
        "popularity",
        "surprise_svd",
        "ease",
        "item_knn",
    }
    keys = {"rmse", "mae", "precision@5", "recall@5", "ndcg@5", "coverage", "fit_seconds"}
    for name, row in result["results"].items():
        assert keys <= set(row), name
        assert row["fit_seconds"] >= 0
    r = result["results"]
    assert r["global_mean"]["ndcg@5"] is None  # a constant has no ranking, and says so
    for anchor in ("ease", "item_knn"):  # rank only: no stars, a knob chosen on validation
        assert r[anchor]["rmse"] is None and r[anchor]["ndcg@5"] is not None and r[anchor]["chosen"]
    # the taste signal is learnable: the model beats the mean and popularity on this split
    assert r["model"]["rmse"] < r["global_mean"]["rmse"] and r["model"]["rmse"] < r["popularity"]["rmse"]
    assert len(messages) == 6
    table = evaluate.format_table(result)
    for name in ("model", "global_mean", "popularity", "surprise_svd", "ease", "item_knn", "NDCG@5", "fit s"):
        assert name in table


def test_run_evaluation_rejects_unknown_protocols_and_folds_on_other_data() -> None:
    ds = _taste_dataset()
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate.run_evaluation(ds, "kfold", "mf")
    with pytest.raises(ValueError, match="ml-100k only"):
        evaluate.run_evaluation(ds, "ml100k-folds", "mf")
