"""Splits: the ml-100k folds, random and leave-last-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation import splits


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
