"""Per-member caches: an entry is served only while what it was computed from is unchanged."""

from __future__ import annotations

import numpy as np

from recommender.persistence.storage import StoredRating
from recommender.serving.caches import FoldCache, FoldEntry, RatingsCache


def row(movie_id: int, at: float) -> StoredRating:
    return StoredRating(1, movie_id, 4.0, None, at)


def test_ratings_entry_misses_once_the_fingerprint_moves_and_the_oldest_member_goes_first():
    cache = RatingsCache(size=2)
    rows = cache.put(1, [row(10, 5.0), row(11, 3.0)])
    assert cache.get(1, (2, 5.0)) == rows
    assert cache.get(1, (3, 6.0)) is None  # a write elsewhere: count and newest changed
    assert cache.get(1, (2, 4.0)) is None
    cache.put(2, [])
    assert cache.get(2, (0, None)) == ()
    cache.get(1, (2, 5.0))  # 1 is now the most recently used
    cache.put(3, [row(12, 1.0)])
    assert len(cache) == 2 and cache.get(2, (0, None)) is None and cache.get(1, (2, 5.0)) == rows
    cache.drop(1)
    assert cache.get(1, (2, 5.0)) is None


def test_fold_entry_is_valid_for_one_version_and_one_ratings_list():
    cache = FoldCache(size=2)
    user = (np.ones(4), 0.1)
    cache.put(7, FoldEntry("v1", 3, 100.0, 2, user))
    hit = cache.get(7, "v1", 3, 100.0)
    assert hit is not None and hit.n_used == 2 and hit.user is user
    assert cache.get(7, "v2", 3, 100.0) is None
    assert cache.get(7, "v1", 4, 100.0) is None
    assert cache.get(7, "v1", 3, 101.0) is None
    cache.put(8, FoldEntry("v1", 1, 1.0, 1, user))
    cache.put(9, FoldEntry("v1", 1, 1.0, 1, user))  # full: cleared, then 9 kept
    assert len(cache) == 1 and cache.get(9, "v1", 1, 1.0) is not None
