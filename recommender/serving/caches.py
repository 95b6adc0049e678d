"""Per-member memory of the service: ratings lists and folded-in vectors, each checked on use.

Both caches key their entries by what the entry was computed from, so an entry made stale by a
write that bypassed the service (another process, a tool) misses instead of being served.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.persistence.storage import StoredRating

__all__ = ["FOLD_CACHE_SIZE", "RATINGS_CACHE_SIZE", "FoldCache", "FoldEntry", "RatingsCache", "RatingsEntry"]

#: Folded-in members kept in memory (a vector of the model's dimension each).
FOLD_CACHE_SIZE = 10_000
#: Members whose ratings are kept in memory (least recently served dropped first).
RATINGS_CACHE_SIZE = 1_024

#: (count, newest rated_at) of a member's ratings, as ``Storage.ratings_fingerprint`` gives it.
Fingerprint = tuple[int, float | None]
#: A member's vector and bias in one model's factor space.
UserVector = tuple[np.ndarray, float]


@dataclass(frozen=True, slots=True)
class RatingsEntry:
    fingerprint: Fingerprint
    rows: tuple[StoredRating, ...]


@dataclass(frozen=True, slots=True)
class FoldEntry:
    model_version: str
    n_rated: int
    newest: float
    n_used: int  # the rated movies the model knows, which the vector was solved from
    user: UserVector


class RatingsCache:
    """Members' ratings lists, least recently used dropped first."""

    def __init__(self, size: int = RATINGS_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, RatingsEntry] = OrderedDict()

    def get(self, user_id: int, fingerprint: Fingerprint) -> tuple[StoredRating, ...] | None:
        entry = self._entries.get(user_id)
        if entry is None or entry.fingerprint != fingerprint:
            return None
        self._entries.move_to_end(user_id)
        return entry.rows

    def put(self, user_id: int, rows: Sequence[StoredRating]) -> tuple[StoredRating, ...]:
        # The key comes from the rows themselves: a read that raced a write caches a list whose
        # fingerprint no longer matches the database, so its next use re-reads it.
        kept = tuple(rows)
        newest = max((r.rated_at for r in kept), default=None)
        self._entries[user_id] = RatingsEntry((len(kept), newest), kept)
        self._entries.move_to_end(user_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return kept

    def drop(self, user_id: int) -> None:
        self._entries.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._entries)


class FoldCache:
    """Folded-in vectors per member, valid for one model version and one ratings list."""

    def __init__(self, size: int = FOLD_CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[int, FoldEntry] = {}

    def get(self, user_id: int, model_version: str, n_rated: int, newest: float) -> FoldEntry | None:
        entry = self._entries.get(user_id)
        if entry is None or (entry.model_version, entry.n_rated, entry.newest) != (
            model_version,
            n_rated,
            newest,
        ):
            return None
        return entry

    def put(self, user_id: int, entry: FoldEntry) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()  # crude bound; a refill costs one solve per member
        self._entries[user_id] = entry

    def drop(self, user_id: int) -> None:
        self._entries.pop(user_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
