"""The codes and the filter every part of the contract shares (``contract`` re-exports them).

Kept below ``contract`` and ``group_contract`` so that both can use them without importing each
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from recommender.core.types import Movie

__all__ = ["PickFilter", "PopularityReason", "ServingPath"]


class ServingPath(StrEnum):
    """Which part of the recommender answered a request."""

    TRAINED = "trained"  # the member's learned embedding from the last training
    FOLD_IN = "fold_in"  # an embedding solved just now from the member's current ratings
    POPULARITY = "popularity"  # Bayesian-average popular picks: no ratings or no model
    CONTENT = "content"  # a movie without an embedding, predicted from its genres and year


class PopularityReason(StrEnum):
    """Why a member got the crowd's view instead of a personal one."""

    NO_RATINGS = "no_ratings"
    NO_MODEL = "no_model"
    UNKNOWN_MOVIES = "unknown_movies"  # every movie they rated is new to the serving model


@dataclass(frozen=True, slots=True)
class PickFilter:
    """What a member asked ``/recommend`` for: one genre, and years from / to (inclusive)."""

    genre: str | None = None
    year_from: int | None = None
    year_to: int | None = None

    @property
    def active(self) -> bool:
        return self.genre is not None or self.year_from is not None or self.year_to is not None

    def matches(self, movie: Movie) -> bool:
        if self.genre is not None and self.genre not in movie.genres:
            return False
        if self.year_from is None and self.year_to is None:
            return True
        if movie.year is None:
            return False
        return (self.year_from or movie.year) <= movie.year <= (self.year_to or movie.year)
