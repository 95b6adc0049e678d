"""Small value types shared by every part of the recommender (no heavy imports here)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["DATASETS", "HALF", "WHOLE", "DatasetInfo", "Movie", "RatingScale"]


@dataclass(frozen=True, slots=True)
class RatingScale:
    """The stars a dataset allows: ``minimum..maximum`` in steps of ``step``."""

    minimum: float
    maximum: float
    step: float

    def is_valid(self, stars: float) -> bool:
        if not isinstance(stars, int | float) or isinstance(stars, bool) or not math.isfinite(stars):
            return False
        if not self.minimum <= stars <= self.maximum:
            return False
        steps = (stars - self.minimum) / self.step
        return abs(steps - round(steps)) < 1e-9

    def clip(self, value: float) -> float:
        return min(self.maximum, max(self.minimum, value))

    @property
    def classes(self) -> list[float]:
        """Every allowed value, lowest first (the classifier family's output classes)."""
        n = round((self.maximum - self.minimum) / self.step)
        return [round(self.minimum + i * self.step, 6) for i in range(n + 1)]

    def describe(self) -> str:
        step = "half stars" if self.step == 0.5 else "whole stars"
        return f"{self.minimum:g} to {self.maximum:g} in {step}"


@dataclass(frozen=True, slots=True)
class Movie:
    movie_id: int
    title: str
    year: int | None = None
    genres: tuple[str, ...] = field(default_factory=tuple)
    #: from the dataset's links.csv (IMDb's numeric ``tt`` id, TMDB's id); None where unknown
    imdb_id: int | None = None
    tmdb_id: int | None = None

    @property
    def display(self) -> str:
        """``Title (Year)``: the year tells remakes apart."""
        return f"{self.title} ({self.year})" if self.year else self.title


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What we know about a MovieLens dataset before downloading it."""

    name: str
    scale: RatingScale
    #: ratings/users/movies as stated by the dataset's own README, for structural checks
    n_ratings: int | None = None
    n_users: int | None = None
    n_movies: int | None = None
    #: MD5 of the official zip as GroupLens publishes it next to the archive (``<name>.zip.md5``)
    zip_md5: str | None = None


WHOLE = RatingScale(1.0, 5.0, 1.0)
HALF = RatingScale(0.5, 5.0, 0.5)

DATASETS: dict[str, DatasetInfo] = {
    "ml-100k": DatasetInfo("ml-100k", WHOLE, 100_000, 943, 1_682),
    "ml-1m": DatasetInfo("ml-1m", WHOLE, 1_000_209, 6_040, 3_900),
    "ml-latest-small": DatasetInfo("ml-latest-small", HALF, 100_836, 610, 9_742),
    "ml-latest": DatasetInfo("ml-latest", HALF),
    "ml-20m": DatasetInfo("ml-20m", HALF, 20_000_263, 138_493, 27_278),
    "ml-25m": DatasetInfo("ml-25m", HALF, 25_000_095, 162_541, 62_423),
    # GroupLens's current stable set (ratings to 2023), ml-25m's layout. zip_md5: the value of
    # https://files.grouplens.org/datasets/movielens/ml-32m.zip.md5, used only when that file can't
    # be fetched from GroupLens itself.
    "ml-32m": DatasetInfo("ml-32m", HALF, 32_000_204, 200_948, 87_585, "d472be332d4daa821edc399621853b57"),
}


def member_key(user_id: int) -> str:
    """The id-map key of a Discord member (never collides with a MovieLens user)."""
    return f"member:{int(user_id)}"


def ml_key(user_id: int) -> str:
    """The id-map key of a MovieLens user."""
    return f"ml:{int(user_id)}"
