"""Splits, metrics (against hand-computed values), baselines and the evaluation result shape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.core.types import RatingScale
from recommender.data.popularity import bayesian_popularity
from recommender.evaluation import baselines, metrics, splits
from recommender.pipeline import evaluate

# --- metrics, by hand ------------------------------------------------------------------------


def test_rmse_and_mae_by_hand() -> None:
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_precision_recall_ndcg_by_hand() -> None:
    rec = [10, 20, 30, 40, 50]
    relevant = {20, 50, 99}
    assert metrics.precision_at_k(rec, relevant) == pytest.approx(2 / 5)
    assert metrics.recall_at_k(rec, relevant) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)  # hits at ranks 2 and 5
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant: ideal hits at ranks 1..3
    assert metrics.ndcg_at_k(rec, relevant) == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k([20, 50, 99], relevant) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(rec, set()) == 0.0 and metrics.recall_at_k(rec, set()) == 0.0
    assert metrics.precision_at_k([20], relevant) == pytest.approx(1 / 5)  # short lists still divide by k


def test_catalog_coverage() -> None:
    assert metrics.catalog_coverage([[1, 2], [2, 3], []], 10) == pytest.approx(0.3)


# --- splits ----------------------------------------------------------------------------------


def test_ml100k_folds_match_the_udata_line_blocks(movielens_dir: Path, tmp_path: Path) -> None:
    from recommender.data.movielens import load_movielens

    data = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k", progress=False)
    lines = (movielens_dir / "ml-100k" / "u.data").read_text().splitlines()
    raw = [tuple(int(x) for x in line.split("\t")[:2]) for line in lines]
    folds = list(splits.ml100k_folds(data.ratings))
    assert [f.name for f in folds] == ["u1", "u2", "u3", "u4", "u5"]
    seen_test: set[int] = set()
    for i, fold in enumerate(folds, 1):
        lo, hi = (i - 1) * 20_000, i * 20_000  # lines lo+1 .. hi (1-based), as mku.sh's head/tail do
        test_pairs = list(zip(fold.test["user_id"].tolist(), fold.test["movie_id"].tolist(), strict=True))
        assert test_pairs == raw[lo:hi]
        train_pairs = list(zip(fold.train["user_id"].tolist(), fold.train["movie_id"].tolist(), strict=True))
        assert train_pairs == raw[:lo] + raw[hi:]
        idx = set(fold.test.index.tolist())
        assert not idx & set(fold.train.index.tolist())
        assert not idx & seen_test  # every rating is tested exactly once across the folds
        seen_test |= idx
    assert len(seen_test) == 100_000
    again = list(splits.ml100k_folds(data.ratings))
    assert all(a.test.equals(b.test) for a, b in zip(folds, again, strict=True))


def test_ml100k_folds_refuse_other_data() -> None:
    with pytest.raises(ValueError, match="100,000"):
        list(splits.ml100k_folds(pd.DataFrame({"user_id": [1], "movie_id": [1], "rating": [3.0]})))


def _frame(n_users: int = 6, per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (u, int(m), float(rng.integers(1, 6)), int(rng.integers(0, 10**6)))
        for u in range(1, n_users + 1)
        for m in rng.choice(np.arange(1, 41), per_user, replace=False)
    ]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_random_split_is_seeded_disjoint_and_ninety_ten() -> None:
    frame = _frame()
    a, b, c = (
        splits.random_split(frame, seed=1),
        splits.random_split(frame, seed=1),
        splits.random_split(frame, seed=2),
    )
    assert a.test.equals(b.test)
    assert not a.test.index.equals(c.test.index)
    assert len(a.test) == 12 and len(a.train) == 108
    assert not set(a.test.index) & set(a.train.index)


def test_leave_last_out_holds_out_each_users_latest_ratings() -> None:
    frame = _frame(per_user=20)
    split = splits.leave_last_out(frame, n_last=3)
    for user, group in frame.groupby("user_id"):
        test = split.test[split.test["user_id"] == user]
        train = split.train[split.train["user_id"] == user]
        assert len(test) == 3 and len(train) == len(group) - 3
        assert test["timestamp"].min() >= train["timestamp"].max()
    # a user with few ratings keeps at least half of them for training
    small = pd.DataFrame(
        {"user_id": [9] * 4, "movie_id": [1, 2, 3, 4], "rating": [4.0] * 4, "timestamp": [4, 3, 2, 1]}
    )
    s = splits.leave_last_out(small, n_last=3)
    assert sorted(s.test["movie_id"]) == [1, 2]


# --- baselines and the full run ----------------------------------------------------------------


def test_popularity_baseline_ranks_like_bayesian_popularity() -> None:
    frame = _frame()
    pop = baselines.Popularity().fit(frame, pd.DataFrame())
    ids, scores = pop.rank_scores(1)
    ranked = ids[np.argsort(-scores, kind="stable")]
    assert ranked.tolist() == bayesian_popularity(frame).index.tolist()
    table = bayesian_popularity(frame)
    m = int(table.index[0])
    assert pop.predict([1], [m])[0] == pytest.approx(table.loc[m, "score"])


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
        "als_iters": 3,
    }
    messages: list[str] = []
    result = evaluate.run_evaluation(ds, "random", "mf", params, seed=3, on_progress=messages.append)
    assert {k: result[k] for k in ("dataset", "protocol", "seed")} == {
        "dataset": "tiny",
        "protocol": "random",
        "seed": 3,
    }
    assert set(result["results"]) == {"model", "global_mean", "popularity", "surprise_svd"}
    keys = {"rmse", "mae", "precision@5", "recall@5", "ndcg@5", "coverage", "fit_seconds"}
    for name, row in result["results"].items():
        assert keys <= set(row), name
        assert row["fit_seconds"] >= 0
    r = result["results"]
    assert r["global_mean"]["ndcg@5"] is None  # a constant has no ranking, and says so
    # the taste signal is learnable: the model beats the mean and popularity on this split
    assert r["model"]["rmse"] < r["global_mean"]["rmse"] and r["model"]["rmse"] < r["popularity"]["rmse"]
    assert len(messages) == 4
    table = evaluate.format_table(result)
    for name in ("model", "global_mean", "popularity", "surprise_svd", "NDCG@5", "fit s"):
        assert name in table


def test_run_evaluation_rejects_unknown_protocols_and_folds_on_other_data() -> None:
    ds = _taste_dataset()
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate.run_evaluation(ds, "kfold", "mf")
    with pytest.raises(ValueError, match="ml-100k only"):
        evaluate.run_evaluation(ds, "ml100k-folds", "mf")


def test_missing_surprise_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import builtins

    real_import = builtins.__import__

    def no_surprise(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "surprise" or name.startswith("surprise."):
            raise ImportError("No module named 'surprise'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_surprise)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[bench\]'"):
        baselines.SurpriseSVD(0).fit(_frame(), pd.DataFrame())
