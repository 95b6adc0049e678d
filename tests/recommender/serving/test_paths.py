"""Request paths at their edges: rated movies all unknown to the model, fold-in from very little."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from recommender.persistence.storage import StoredRating
from recommender.serving.caches import FoldCache
from recommender.serving.contract import PopularityReason, ServingPath
from recommender.serving.paths import choose_taste, ratings_cutoff

from .service_fakes import CLUSTER_A, CLUSTER_B, CONTENT_ONLY, HALF, make_model

USER = 7


def rated(*pairs: tuple[int, float]) -> list[StoredRating]:
    now = time.time()
    return [StoredRating(USER, m, s, None, now + i) for i, (m, s) in enumerate(pairs)]


def test_a_member_whose_rated_movies_are_all_unknown_gets_popularity_and_why():
    model = make_model("v1", without=CLUSTER_B)
    taste = choose_taste(model, USER, rated((CONTENT_ONLY, 5.0), (CLUSTER_B[0], 4.0)), FoldCache())
    assert taste.path is ServingPath.POPULARITY and taste.user is None
    assert taste.popularity_reason is PopularityReason.UNKNOWN_MOVIES
    assert taste.n_ratings == 2


@pytest.mark.parametrize(
    "ratings",
    [
        [(CLUSTER_A[0], 5.0)],
        [(m, 5.0) for m in CLUSTER_A],  # ten identical ratings
        [(m, 0.5) for m in CLUSTER_A],
    ],
    ids=["one", "ten-identical-high", "ten-identical-low"],
)
def test_fold_in_from_very_little_is_finite_and_within_the_scale(ratings):
    model = make_model("v1")
    folds = FoldCache()
    taste = choose_taste(model, USER, rated(*ratings), folds)
    assert taste.path is ServingPath.FOLD_IN and taste.user is not None
    vector, bias = taste.user
    assert np.isfinite(vector).all() and math.isfinite(bias)
    stars = model.predict(taste.user, np.asarray(CLUSTER_A + CLUSTER_B))
    assert np.isfinite(stars).all()
    assert (stars >= HALF.minimum).all() and (stars <= HALF.maximum).all()
    for movie_id, score in model.recommend(taste.user, 5, exclude={m for m, _ in ratings}):
        assert math.isfinite(score) and HALF.minimum <= score <= HALF.maximum, movie_id
    assert len(folds) == 1  # solved once, then served from the cache
    again = choose_taste(model, USER, rated(*ratings), folds)
    assert again.path is ServingPath.FOLD_IN


def test_cutoff_ignores_an_unknown_training_start():
    model = make_model("v1", trained_at=1000.0)
    model.metrics = {"trained_at": 0}
    assert ratings_cutoff(model) == 1000.0
    model.metrics = {"trained_at": 900.0}
    assert ratings_cutoff(model) == 900.0
