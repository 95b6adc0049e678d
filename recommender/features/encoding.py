"""Dense indices, movie features and the fit/validation split of one training run (pandas + numpy)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.core.types import ml_key
from recommender.features.content import ContentFeatures

log = logging.getLogger(__name__)

__all__ = ["Encoded", "encode", "user_keys_of", "without_rows"]


@dataclass
class Encoded:
    """Dense indices, features and the fit/validation split of one training run."""

    user_keys: list[str]
    movie_ids: np.ndarray
    users: np.ndarray
    movies: np.ndarray
    ratings: np.ndarray
    fit: np.ndarray  # row indices used for fitting
    val: np.ndarray  # row indices of the validation slice
    global_mean: float
    content: ContentFeatures
    content_matrix: np.ndarray  # (I, F) genres/year features of the indexed movies
    hybrid_features: np.ndarray  # (I, F + 2): content, centred shrunk average rating, standardised log count
    counts: np.ndarray  # (I,) ratings per movie in the fit rows

    @property
    def user_index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.user_keys)}

    @property
    def movie_index(self) -> dict[int, int]:
        return {int(m): i for i, m in enumerate(self.movie_ids.tolist())}


def without_rows(enc: Encoded) -> Encoded:
    """``enc`` without its per-rating arrays (indices, features and counts stay): what a run keeps
    once the rating model is fitted and checked, so they are not carried through the ranking
    model's fit (most of a gigabyte at ml-32m's size)."""
    empty = np.zeros(0, dtype=np.int64)  # not [:0] slices: a view would keep the arrays alive
    return dataclasses.replace(
        enc,
        users=np.zeros(0, enc.users.dtype),
        movies=np.zeros(0, enc.movies.dtype),
        ratings=np.zeros(0, enc.ratings.dtype),
        fit=empty,
        val=empty,
    )


def user_keys_of(ratings: pd.DataFrame) -> pd.Series:
    if "user_key" in ratings.columns:
        return ratings["user_key"].astype(str)
    return ratings["user_id"].astype(np.int64).map(ml_key)


def encode(ratings: pd.DataFrame, movies: pd.DataFrame, val_fraction: float, seed: int) -> Encoded:
    if ratings.empty:
        raise ValueError("no ratings to train on")
    keys = user_keys_of(ratings)
    user_codes, user_keys = pd.factorize(keys, sort=True)
    movie_codes, movie_ids = pd.factorize(ratings["movie_id"].astype(np.int64), sort=True)
    y = ratings["rating"].to_numpy(dtype=np.float64)
    n = len(y)
    rng = np.random.default_rng(seed)
    n_val = round(n * val_fraction) if n >= 20 else 0
    perm = rng.permutation(n)
    val, fit = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    mu = float(y[fit].mean())
    counts = np.bincount(movie_codes[fit], minlength=len(movie_ids))
    sums = np.bincount(movie_codes[fit], weights=y[fit], minlength=len(movie_ids))
    shrunk = (sums + 10.0 * mu) / (counts + 10.0) - mu  # average rating, shrunk so 1 vote means little

    meta = movies.drop_duplicates("movie_id").set_index(movies["movie_id"].astype(np.int64).values)
    genres_all = meta["genres"].tolist() if "genres" in meta else []
    years_all = meta["year"].tolist() if "year" in meta else []
    content = ContentFeatures.fit(genres_all, years_all)
    rows = [meta.loc[m] if m in meta.index else None for m in movie_ids.tolist()]
    g = [
        tuple(r["genres"]) if r is not None and isinstance(r.get("genres"), tuple | list) else ()
        for r in rows
    ]
    yr = [r.get("year") if r is not None else None for r in rows]
    yr = [None if v is None or pd.isna(v) else float(v) for v in yr]
    cm = content.matrix(g, yr)
    # how much a movie is watched says something its genres don't (and users differ in how much
    # they follow the crowd); measured on the fit rows only, like the average
    logc = np.log1p(counts)
    logc = (logc - logc.mean()) / (logc.std() or 1.0)
    hf = np.hstack([cm, shrunk[:, None], logc[:, None]]).astype(np.float32)
    return Encoded(
        user_keys=list(user_keys),
        movie_ids=np.asarray(movie_ids, dtype=np.int64),
        users=user_codes.astype(np.int32),
        movies=movie_codes.astype(np.int32),
        ratings=y,
        fit=fit,
        val=val,
        global_mean=mu,
        content=content,
        content_matrix=cm,
        hybrid_features=hf,
        counts=counts,
    )
