"""A small in-memory RecommenderService for driving the bot without data files or TensorFlow.

It follows the contract in docs/INTERFACES.md and returns the real result types of
``recommender.serving.service``, so the cogs see exactly what the real service gives them. It records the
calls it receives so tests can check that the bot passed the right values through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from recommender.core.errors import InvalidStars, RetrainInProgress, UnknownMovie
from recommender.core.types import DATASETS, Movie, RatingScale
from recommender.pipeline.protocol import Done, Epoch, Event, Start
from recommender.serving.service import (
    Pick,
    Prediction,
    RatingResult,
    Recommendations,
    ServiceStats,
    ServingPath,
)

MOVIES = [
    Movie(1, "Toy Story", 1995, ("Animation", "Comedy")),
    Movie(2, "Jumanji", 1995, ("Adventure",)),
    Movie(3, "Heat", 1995, ("Action", "Crime")),
    Movie(4, "Casino", 1995, ("Crime", "Drama")),
    Movie(5, "Sense and Sensibility", 1995, ("Drama", "Romance")),
    Movie(6, "GoldenEye", 1995, ("Action", "Adventure")),
    Movie(7, "Toy Story 2", 1999, ("Animation", "Comedy")),
    Movie(8, "The Matrix", 1999, ("Action", "Sci-Fi")),
    Movie(9, "A" * 150, 2001, ("Drama",)),  # a title longer than Discord's 100-character choice limit
] + [Movie(100 + i, f"Filler Movie {i}", 2000 + i % 20, ("Drama",)) for i in range(40)]


@dataclass
class StoredRating:
    user_id: int
    movie_id: int
    stars: float
    guild_id: int | None
    rated_at: float


@dataclass
class FakeService:
    scale: RatingScale = field(default_factory=lambda: DATASETS["ml-latest-small"].scale)
    movies: list[Movie] = field(default_factory=lambda: list(MOVIES))
    ratings_by_user: dict[int, dict[int, StoredRating]] = field(default_factory=dict)
    model_version: str | None = None
    trained_at: float = 0.0
    calls: list[tuple[str, Any]] = field(default_factory=list)
    #: set by a test to hold a retrain until it is released (see ``hold_retrain``)
    retrain_gate: Callable[[], Awaitable[None]] | None = None
    retrain_epochs: int = 5
    retrain_publish: bool = True
    plot_path: str | None = None
    search_error: Exception | None = None
    fail_with: Exception | None = None
    #: called with the method name at the start of every service call (tests check what Discord saw by then)
    probe: Callable[[str], None] | None = None
    _retraining: bool = False

    def _probe(self, name: str) -> None:
        if self.probe is not None:
            self.probe(name)

    # -- catalog ---------------------------------------------------------------------------
    def _get(self, movie_id: int) -> Movie:
        for movie in self.movies:
            if movie.movie_id == movie_id:
                return movie
        raise UnknownMovie(str(movie_id))

    def search(self, query: str, limit: int = 25) -> list[Movie]:
        self.calls.append(("search", query))
        if self.search_error is not None:
            raise self.search_error
        q = query.strip().lower()
        return [m for m in self.movies if q in m.title.lower()][:limit]

    def resolve(self, text: str) -> Movie:
        self.calls.append(("resolve", text))
        if text.strip().isdigit():
            return self._get(int(text))
        for movie in self.movies:
            if text.strip().lower() in (movie.title.lower(), movie.display.lower()):
                return movie
        words = text.lower().split()
        suggestions = [m for m in self.movies if any(w[:4] in m.title.lower() for w in words)][:5]
        raise UnknownMovie(text, suggestions)

    # -- ratings ---------------------------------------------------------------------------
    async def rate(
        self, user_id: int, movie_id: int, stars: float, guild_id: int | None = None
    ) -> RatingResult:
        self._probe("rate")
        self.calls.append(("rate", (user_id, movie_id, stars, guild_id)))
        if self.fail_with is not None:
            raise self.fail_with
        if not self.scale.is_valid(stars):
            raise InvalidStars(stars, self.scale)
        movie = self._get(movie_id)
        mine = self.ratings_by_user.setdefault(user_id, {})
        previous = mine[movie_id].stars if movie_id in mine else None
        mine[movie_id] = StoredRating(user_id, movie_id, float(stars), guild_id, time.time())
        return RatingResult(movie, float(stars), previous, len(mine))

    async def ratings(self, user_id: int) -> list[tuple[Movie, StoredRating]]:
        self._probe("ratings")
        rows = sorted(self.ratings_by_user.get(user_id, {}).values(), key=lambda r: -r.rated_at)
        return [(self._get(r.movie_id), r) for r in rows]

    async def forget(self, user_id: int) -> int:
        self._probe("forget")
        self.calls.append(("forget", user_id))
        if self.fail_with is not None:
            raise self.fail_with
        return len(self.ratings_by_user.pop(user_id, {}))

    # -- serving -----------------------------------------------------------------------------
    def _path(self, user_id: int) -> ServingPath:
        mine = self.ratings_by_user.get(user_id)
        if not mine or self.model_version is None:
            return ServingPath.POPULARITY
        return (
            ServingPath.TRAINED
            if max(r.rated_at for r in mine.values()) <= self.trained_at
            else ServingPath.FOLD_IN
        )

    async def recommend(self, user_id: int, k: int = 5) -> Recommendations:
        self._probe("recommend")
        self.calls.append(("recommend", user_id))
        if self.fail_with is not None:
            raise self.fail_with
        path = self._path(user_id)
        rated = set(self.ratings_by_user.get(user_id, {}))
        picks = [Pick(m, 4.0, f"fake reason via {path}") for m in self.movies if m.movie_id not in rated][:k]
        return Recommendations(picks, path, f"explained by {path}", self.model_version)

    async def predict(self, user_id: int, movie_id: int) -> Prediction:
        self._probe("predict")
        self.calls.append(("predict", (user_id, movie_id)))
        return Prediction(self._get(movie_id), 3.5, self._path(user_id), "because of a fake")

    async def similar(self, movie_id: int, k: int = 5) -> list[Pick]:
        self._probe("similar")
        self.calls.append(("similar", movie_id))
        return [Pick(m, 4.0, "liked by the same people") for m in self.movies if m.movie_id != movie_id][:k]

    # -- admin -------------------------------------------------------------------------------
    async def stats(self) -> ServiceStats:
        self._probe("stats")
        n = sum(len(v) for v in self.ratings_by_user.values())
        new = sum(
            1 for v in self.ratings_by_user.values() for r in v.values() if r.rated_at > self.trained_at
        )
        return ServiceStats(
            ratings=n,
            members=len(self.ratings_by_user),
            catalog_size=len(self.movies),
            model_version=self.model_version,
            model_family="mf" if self.model_version else None,
            model_metrics={"val_rmse": 0.91} if self.model_version else {},
            model_trained_at=self.trained_at or None,
            model_status="ok" if self.model_version else "unavailable: no model loaded",
            ratings_since_training=new,
            retrain_running=self._retraining,
        )

    async def retrain(
        self, on_progress: Callable[[Event], Awaitable[None]] | None = None, *, force: bool = False
    ) -> Done:
        self._probe("retrain")
        self.calls.append(("retrain", force))
        if self._retraining:
            raise RetrainInProgress()
        self._retraining = True
        try:
            if on_progress:
                await on_progress(Start())
            if self.retrain_gate is not None:
                await self.retrain_gate()
            for epoch in range(1, self.retrain_epochs + 1):
                if on_progress:
                    await on_progress(
                        Epoch(epoch=epoch, epochs=self.retrain_epochs, loss=1 / epoch, val_loss=1.1 / epoch)
                    )
                await asyncio.sleep(0)
            if not self.retrain_publish:
                return Done(
                    ok=True,
                    published=False,
                    version="v-rejected",
                    reason="validation RMSE 0.99 is worse than 0.91",
                    metrics={"val_rmse": 0.99},
                    plot=self.plot_path,
                )
            self.model_version = f"v{len([c for c in self.calls if c[0] == 'retrain'])}"
            self.trained_at = time.time()
            return Done(
                ok=True,
                published=True,
                version=self.model_version,
                reason="first model",
                metrics={"val_rmse": 0.91, "epochs_run": self.retrain_epochs},
                plot=self.plot_path,
            )
        finally:
            self._retraining = False
