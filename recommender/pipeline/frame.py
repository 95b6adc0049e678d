"""The training frame: MovieLens ratings plus the members' (as extra users), and the hash holdout.

Movies admins added to the catalogue (newer than the dataset) join the dataset's movies, with their
features (genres, year) from the catalogue, so members' ratings of them are trained on too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recommender.core.types import RatingScale, member_key, ml_key

log = logging.getLogger(__name__)

__all__ = [
    "HOLDOUT_SCHEME",
    "TrainingFrame",
    "build_training_frame",
    "holdout_mask",
    "member_training_rows",
    "training_movies",
]

#: Names the held-out split (holdout_mask); change it whenever that function's choice changes.
HOLDOUT_SCHEME = "splitmix64(user,movie)-v1"
_COLUMNS = ["user_id", "movie_id", "rating", "timestamp", "user_key"]


def _keys(user_ids: pd.Series, key: Any) -> np.ndarray:
    """``key(id)`` for every row, computed once per distinct id (the frame may hold millions)."""
    codes, uniques = pd.factorize(user_ids.astype("int64"))
    return np.array([key(int(u)) for u in uniques], dtype=object)[codes]


def member_training_rows(members: pd.DataFrame, movies: pd.DataFrame, scale: RatingScale) -> pd.DataFrame:
    """Members' ratings as extra users (``member:<id>``), dropping movies or stars the dataset lacks."""
    if members.empty:
        return members.assign(user_key=pd.Series([], dtype=object))
    known = members["movie_id"].isin(movies["movie_id"])
    valid = members["rating"].map(lambda s: scale.is_valid(float(s))).astype(bool)
    dropped = int((~(known & valid)).sum())
    if dropped:
        # e.g. ratings kept from a catalog of another dataset: they cannot be trained on here
        log.warning("skipping %d member ratings for movies or stars outside this dataset", dropped)
    kept = members[known & valid]
    return kept.assign(user_key=_keys(kept["user_id"], member_key))


def training_movies(dataset_movies: pd.DataFrame, added: pd.DataFrame | None) -> pd.DataFrame:
    """The dataset's movies plus the catalogue's added ones (an id the dataset holds stays the dataset's)."""
    if added is None or added.empty:
        return dataset_movies
    extra = added[~added["movie_id"].isin(dataset_movies["movie_id"])]
    columns = [c for c in dataset_movies.columns if c in extra.columns]
    joined = pd.concat([dataset_movies, extra[columns]], ignore_index=True)
    return joined.astype({"movie_id": dataset_movies["movie_id"].dtype})


def holdout_mask(user_ids: np.ndarray, movie_ids: np.ndarray, fraction: float) -> np.ndarray:
    """Rows held out for testing, chosen by a hash of (user, movie) rather than by the seed.

    The same rating is held out in every run, whatever the seed, the members or --max-users, so
    the serving version never trained on the rows a new run is tested on, and both can be scored
    on exactly the same ratings (a paired comparison; see ``gate.compare_on_holdout``).
    """
    x = user_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + movie_ids.astype(np.uint64)
    # splitmix64's finaliser: well mixed and the same on every platform and numpy version
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


@dataclass(frozen=True)
class TrainingFrame:
    """What a run trains and tests on."""

    ratings: pd.DataFrame  # MovieLens + member rows with ``user_key``
    test: pd.DataFrame  # the MovieLens-only held-out rows
    n_member_ratings: int
    n_members: int
    #: the dataset's movies plus the added ones: what the model is fitted with
    movies: pd.DataFrame | None = None


def build_training_frame(
    data: Any,
    members: pd.DataFrame,
    *,
    max_users: int | None,
    test_fraction: float,
    added: pd.DataFrame | None = None,
) -> TrainingFrame:
    """MovieLens (optionally its first ``max_users`` users) minus the holdout, plus member ratings
    (of dataset movies and of ``added`` ones: the catalogue's movies newer than the dataset)."""
    ml = data.ratings
    if max_users is not None:
        ml = ml[ml["user_id"].isin(np.sort(ml["user_id"].unique())[:max_users])]
    ml = ml.assign(user_key=_keys(ml["user_id"], ml_key))
    test = ml.iloc[:0].copy()  # not a view: it would keep the dataset's arrays alive
    if test_fraction > 0:
        held = holdout_mask(ml["user_id"].to_numpy(), ml["movie_id"].to_numpy(), test_fraction)
        test, ml = ml[held], ml[~held]
    movies = training_movies(data.movies, added)
    extra = member_training_rows(members, movies, data.scale)
    # the dataset's compact dtypes for both parts: an empty members' frame of float64 columns
    # would otherwise widen every column of the concatenation (a third more memory at ml-32m's size)
    dtypes = {"user_id": "int64", **{c: ml[c].dtype for c in ("movie_id", "rating", "timestamp")}}
    frame = pd.concat([ml[_COLUMNS].astype(dtypes), extra[_COLUMNS].astype(dtypes)], ignore_index=True)
    return TrainingFrame(frame, test, len(extra), int(extra["user_key"].nunique()), movies)
