"""Movie content features (genres, year) shared by training and serving: the content model's input."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ContentFeatures"]


@dataclass(frozen=True)
class ContentFeatures:
    """Turns a movie's genres and year into the feature vector the content models use."""

    genres: tuple[str, ...]
    year_mean: float = 1990.0
    year_std: float = 15.0

    @classmethod
    def fit(cls, genres: Iterable[Sequence[str]], years: Iterable[float | None]) -> ContentFeatures:
        vocab = sorted({g for gs in genres for g in (gs or ()) if g and g != "(no genres listed)"})
        ys = np.array([float(y) for y in years if y is not None and not _isnan(y)], dtype=np.float64)
        mean = float(ys.mean()) if ys.size else 1990.0
        std = float(ys.std()) if ys.size > 1 and ys.std() > 0 else 15.0
        return cls(tuple(vocab), mean, std)

    @property
    def size(self) -> int:
        # genres, year (standardised), year squared, year-missing flag, intercept
        return len(self.genres) + 4

    def vector(self, genres: Sequence[str] | None, year: float | None) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.float64)
        index = {g: i for i, g in enumerate(self.genres)}
        for g in genres or ():
            if g in index:
                out[index[g]] = 1.0
        n = len(self.genres)
        if year is None or _isnan(year):
            out[n + 2] = 1.0
        else:
            z = (float(year) - self.year_mean) / self.year_std
            out[n], out[n + 1] = z, z * z
        out[n + 3] = 1.0
        return out

    def matrix(self, genres: Sequence[Sequence[str] | None], years: Sequence[float | None]) -> np.ndarray:
        if len(genres) == 0:
            return np.zeros((0, self.size))
        return np.stack([self.vector(g, y) for g, y in zip(genres, years, strict=True)])


def _isnan(value: object) -> bool:
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
