"""The training frame at scale: compact columns, and no view that keeps the dataset's arrays alive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.movielens import load_movielens
from recommender.pipeline.frame import build_training_frame

# what the trainer passes when no member has rated yet: pandas makes the empty columns float64
NO_MEMBERS = pd.DataFrame({"user_id": [], "movie_id": [], "rating": [], "timestamp": []})


@pytest.mark.parametrize("test_fraction", [0.0, 0.1])
def test_the_frame_keeps_the_dataset_dtypes_and_shares_none_of_its_memory(
    movielens_dir, tmp_path, test_fraction: float
) -> None:
    data = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k", progress=False)
    frame = build_training_frame(data, NO_MEMBERS, max_users=None, test_fraction=test_fraction)
    for column in ("movie_id", "rating", "timestamp"):
        assert frame.ratings[column].dtype == data.ratings[column].dtype, column
    for part in (frame.ratings, frame.test):
        for column in ("user_id", "movie_id", "rating", "timestamp"):
            assert not np.shares_memory(part[column].to_numpy(), data.ratings[column].to_numpy()), column
    assert len(frame.ratings) + len(frame.test) == len(data.ratings)
