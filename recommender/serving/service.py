"""RecommenderService: what the bot calls (``contract.MovieService``). No discord, no TensorFlow.

It is given its resources (storage, catalogue, registry, worker) by whoever builds it
(``bot/__main__.py``); the request paths live in ``paths``, hot reload in ``reload``, per-member
memory in ``caches``. Answers are codes and numbers; ``bot/`` words them.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

from recommender.core.errors import InvalidStars, UnknownMovie
from recommender.core.types import Movie, RatingScale
from recommender.data.imports import ImportCatalog
from recommender.data.posters import PosterClient
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage, StoredRating
from recommender.pipeline.protocol import Done
from recommender.scoring.model import ServingModel
from recommender.serving import added as details
from recommender.serving import importing
from recommender.serving.added_movies import AddedMovies
from recommender.serving.caches import FoldCache, RatingsCache
from recommender.serving.catalog import Catalog
from recommender.serving.contract import (
    ContentReason,
    ImportSummary,
    Pick,
    PickFilter,
    Prediction,
    ProgressCallback,
    RatingResult,
    Recommendations,
    ServiceStats,
    ServingPath,
)
from recommender.serving.grouping import GroupPicking
from recommender.serving.nights import MovieNights
from recommender.serving.paths import (
    Popularity,
    choose_taste,
    new_movie_pick,
    personal_picks,
    predict_stars,
    ratings_cutoff,
    similar_picks,
    with_new_movie,
)
from recommender.serving.reload import FAILED_RETRY_SECONDS, RELOAD_CHECK_SECONDS, Loaded, ModelWatcher
from recommender.serving.retraining import Retraining

__all__ = ["RecommenderService", "Worker"]

log = logging.getLogger(__name__)


class Worker(Protocol):
    """What the service needs from ``pipeline.worker.TrainingWorker``."""

    @property
    def running(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    async def run(
        self,
        *,
        on_progress: ProgressCallback | None = None,
        force: bool = False,
        on_spawn: Callable[[int], Awaitable[None]] | None = None,
    ) -> Done: ...

    async def stop(self, grace: float | None = None) -> None: ...


class RecommenderService(Retraining, AddedMovies, GroupPicking, MovieNights):
    """Rate, recommend, predict, similar, retrain, group picks and movie nights: the operations behind
    the bot's commands."""

    def __init__(
        self,
        storage: Storage,
        catalog: Catalog,
        registry: Registry,
        scale: RatingScale,
        *,
        popularity: Mapping[int, tuple[int, float, float]] | None = None,
        worker: Worker | None = None,
        reload_check_seconds: float = RELOAD_CHECK_SECONDS,
        failed_retry_seconds: float = FAILED_RETRY_SECONDS,
        dataset: str | None = None,
        added: Iterable[int] = (),
        posters: PosterClient | None = None,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.registry = registry
        self._scale = scale
        self.worker = worker
        self._posters = posters
        self._popularity = Popularity(popularity or {}, scale)
        self._folds = FoldCache()
        # Reading a member's ratings from SQLite on every request was a large share of /recommend;
        # the cached list is checked against the database's (count, newest) fingerprint on each use,
        # so a write from anywhere (another request, process or tool) is seen at once.
        self._ratings = RatingsCache()
        self.watcher = ModelWatcher(
            registry,
            check_seconds=reload_check_seconds,
            retry_seconds=failed_retry_seconds,
            on_swap=lambda _model: self._folds.clear(),
            dataset=dataset,
        )
        self._retrain_lock = asyncio.Lock()
        #: movies admins added (not from the dataset), and the genres they may have
        self._added: set[int] = {int(m) for m in added}
        self._genres = details.dataset_genres(m for m in catalog.movies if m.movie_id not in self._added)
        self._catalogue_lock = asyncio.Lock()
        self._import_catalog: ImportCatalog | None = None
        #: member -> when they last imported: a trained member whose import is dated before the
        #: training must still be folded in (their newest rating alone would not say so)
        self._imported_at: dict[int, float] = {}

    async def close(self) -> None:
        """Stop a background reload; the resources passed in are closed by whoever opened them."""
        await self.watcher.close()

    async def __aenter__(self) -> RecommenderService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------- model
    @property
    def scale(self) -> RatingScale:
        return self._scale

    @property
    def model(self) -> ServingModel | None:
        return self.watcher.model

    @property
    def model_version(self) -> str | None:
        return self.watcher.version

    def reload_model(self) -> str | None:
        """Load the registry's current version now (blocking); returns the version being served."""
        return self.watcher.reload()

    async def reload_model_async(self, loading: Awaitable[Loaded] | None = None) -> str | None:
        return await self.watcher.reload_async(loading)

    # ----------------------------------------------------------------------------- ratings
    def _movie(self, movie_id: int) -> Movie:
        try:
            # operator.index accepts numpy integers but not floats or strings; a bool is no movie id
            movie = None if isinstance(movie_id, bool) else self.catalog.get(operator.index(movie_id))
        except TypeError:
            movie = None
        if movie is None:
            raise UnknownMovie(str(movie_id))
        return movie

    async def rate(
        self, user_id: int, movie_id: int, stars: float, guild_id: int | None = None
    ) -> RatingResult:
        """Store ``stars`` for a movie (replacing an earlier rating). Nothing is stored on a bad value."""
        if not self._scale.is_valid(stars):
            raise InvalidStars(stars, self._scale)
        movie = self._movie(movie_id)
        self._drop_cached(user_id)
        try:
            stored, previous = await self.storage.upsert_rating(
                user_id, movie.movie_id, float(stars), guild_id
            )
        finally:
            self._drop_cached(user_id)
        n = len(await self.storage.user_ratings(user_id))  # not cached: the next request refills it
        return RatingResult(movie, stored.stars, previous, n)

    async def ratings(self, user_id: int) -> list[tuple[Movie, StoredRating]]:
        """The member's ratings, newest first, with their movies."""
        rows = await self._member_ratings(user_id)
        return [(self.catalog.get(r.movie_id) or Movie(r.movie_id, f"movie #{r.movie_id}"), r) for r in rows]

    async def forget(self, user_id: int) -> int:
        """Delete every rating of one member; returns how many were deleted."""
        self._imported_at.pop(user_id, None)
        self._drop_cached(user_id)
        try:
            return await self.storage.delete_user(user_id)
        finally:
            self._drop_cached(user_id)

    def _drop_cached(self, user_id: int) -> None:
        self._ratings.drop(user_id)
        self._folds.drop(user_id)

    async def _member_ratings(self, user_id: int) -> Sequence[StoredRating]:
        """The member's ratings, newest first: from memory while the database says they're current."""
        fingerprint = await self.storage.ratings_fingerprint(user_id)
        cached = self._ratings.get(user_id, fingerprint)
        if cached is not None:
            return cached
        return self._ratings.put(user_id, await self.storage.user_ratings(user_id))

    # ------------------------------------------------------------------------------ serving
    async def recommend(
        self, user_id: int, k: int = 5, *, filters: PickFilter | None = None, skip: int = 0
    ) -> Recommendations:
        """``k`` movies the member has not rated or hidden, best first, and how they were chosen."""
        self.watcher.maybe_reload()
        model = self.watcher.model  # one snapshot for the whole request, even if a reload swaps it
        rated = await self._member_ratings(user_id)
        taste = choose_taste(model, user_id, rated, self._folds, self._imported_at.get(user_id))
        exclude = {r.movie_id for r in rated} | set(await self.storage.hidden(user_id))
        keep = filters.matches if filters is not None and filters.active else None
        skip = max(0, int(skip))
        version = model.version if model is not None else None
        if taste.user is None or model is None:
            picks = self._popularity.picks(skip + k, exclude, self.catalog, keep)
        else:
            picks = personal_picks(model, taste.user, skip + k, exclude, self.catalog, keep, rated)[skip:]
            if skip == 0:  # an added movie the model has not learned yet competes for the first page
                added = [m for m in self._added_in_catalog() if keep is None or keep(m)]
                fresh = new_movie_pick(model, taste.user, added, exclude)
                picks = with_new_movie(picks, fresh, k)
            return Recommendations(
                tuple(picks), taste.path, taste.n_ratings, taste.popularity_reason, version
            )
        return Recommendations(
            tuple(picks[skip:]), taste.path, taste.n_ratings, taste.popularity_reason, version
        )

    async def predict(self, user_id: int, movie_id: int) -> Prediction:
        """How many stars the member would give one movie, and how that was worked out."""
        self.watcher.maybe_reload()
        model = self.watcher.model
        movie = self._movie(movie_id)
        rated = await self._member_ratings(user_id)
        own = next((r.stars for r in rated if r.movie_id == movie.movie_id), None)
        taste = choose_taste(model, user_id, rated, self._folds, self._imported_at.get(user_id))
        if taste.user is None or model is None:
            stars, count = self._popularity.stars(movie.movie_id, model)
            return Prediction(
                movie,
                self._scale.clip(stars),
                ServingPath.POPULARITY,
                taste.n_ratings,
                taste.popularity_reason,
                own,
                count,
            )
        stars, other_path = predict_stars(model, taste.user, movie)
        why = None
        if other_path is not None:
            added = movie.movie_id in self._added
            why = ContentReason.ADDED_MOVIE if added else ContentReason.NOT_LEARNED
        return Prediction(
            movie,
            self._scale.clip(stars),
            other_path or taste.path,
            taste.n_ratings,
            None,
            own,
            content_reason=why,
        )

    async def similar(self, movie_id: int, k: int = 5, *, user_id: int | None = None) -> list[Pick]:
        """Movies like this one: by learned item factors, else popular movies sharing its genres."""
        self.watcher.maybe_reload()
        movie = self._movie(movie_id)
        hidden = set(await self.storage.hidden(user_id)) if user_id is not None else set()
        picks = similar_picks(self.watcher.model, movie, k + len(hidden), self.catalog, self._popularity)
        return [p for p in picks if p.movie.movie_id not in hidden][:k]

    async def poster(self, movie: Movie) -> str | None:
        if self._posters is None or not movie.tmdb_id:
            return None
        return await self._posters.poster_url(int(movie.tmdb_id))

    def genres(self) -> list[str]:
        counts = Counter(g for m in self.catalog.movies for g in m.genres if g != "(no genres listed)")
        return [g for g, _n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    # ------------------------------------------------------------------ the member's lists
    async def import_ratings(self, user_id: int, data: bytes, guild_id: int | None = None) -> ImportSummary:
        """Match an uploaded history file and store it in one transaction; ``ImportRefused`` else."""
        if self._import_catalog is None:
            self._import_catalog = importing.import_catalog(self.catalog, self._scale)
        result = await asyncio.to_thread(importing.parse, bytes(data), self._import_catalog)
        self._drop_cached(user_id)
        try:
            summary = await importing.run_import(self.storage, result, user_id, guild_id)
        finally:
            self._drop_cached(user_id)
        if summary.inserted or summary.updated:
            self._imported_at[user_id] = time.time()
        return summary

    async def unrate(self, user_id: int, movie_id: int) -> Movie | None:
        self._drop_cached(user_id)
        try:
            deleted = await self.storage.delete_rating(user_id, movie_id)
        finally:
            self._drop_cached(user_id)
        return (self.catalog.get(movie_id) or Movie(movie_id, f"movie #{movie_id}")) if deleted else None

    async def hide(self, user_id: int, movie_id: int) -> bool:
        return await self.storage.hide(user_id, self._movie(movie_id).movie_id)

    async def unhide(self, user_id: int, movie_id: int) -> bool:
        return await self.storage.unhide(user_id, movie_id)

    async def hidden(self, user_id: int) -> list[Movie]:
        return self._movies(await self.storage.hidden(user_id))

    async def add_to_watchlist(self, user_id: int, movie_id: int) -> bool:
        return await self.storage.add_to_watchlist(user_id, self._movie(movie_id).movie_id)

    async def remove_from_watchlist(self, user_id: int, movie_id: int) -> bool:
        return await self.storage.remove_from_watchlist(user_id, movie_id)

    async def watchlist(self, user_id: int) -> list[Movie]:
        return self._movies(await self.storage.watchlist(user_id))

    def _movies(self, ids: Sequence[int]) -> list[Movie]:
        return [self.catalog.get(m) or Movie(m, f"movie #{m}") for m in ids]

    # ------------------------------------------------------------------------------ catalog
    def search(self, query: str, limit: int, max_len: int | None = None) -> list[Movie]:
        return self.catalog.search(query, limit, max_len=max_len)

    def resolve(self, text: str) -> Movie:
        return self.catalog.resolve(text)

    # ------------------------------------------------------------------------ stats/retrain
    async def stats(self) -> ServiceStats:
        self.watcher.maybe_reload()
        model = self.watcher.model
        counts = await self.storage.stats()
        since = await self.storage.count_ratings(since=ratings_cutoff(model) if model is not None else None)
        return ServiceStats(
            ratings=int(counts.get("ratings", 0)),
            members=int(counts.get("members", 0)),
            catalog_size=len(self.catalog),
            model_version=model.version if model is not None else None,
            model_family=model.family if model is not None else None,
            model_metrics=dict(model.metrics) if model is not None else {},
            model_trained_at=model.trained_at if model is not None else None,
            model_status=self.watcher.status,
            ratings_since_training=since,
            retrain_running=self._retrain_lock.locked(),
        )
