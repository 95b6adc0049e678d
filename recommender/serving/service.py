"""RecommenderService: what the bot calls. Plain async Python, typed results, no discord, no TensorFlow.

Scoring uses the registry's exported numpy arrays (``scoring.ServingModel``). Each request picks a
serving path (see :class:`ServingPath`) and says which one in words a member understands. A newly
published model version is swapped in by replacing one reference, so requests in flight finish on
the version they started with; a missing or corrupt version leaves the service on popularity (or on
the version it already had) instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import operator
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from recommender.core.errors import InvalidStars, RecommenderError, RetrainInProgress, UnknownMovie
from recommender.core.types import DATASETS, Movie, RatingScale
from recommender.pipeline.protocol import Done, Event
from recommender.serving.explain import (
    ServingPath,
    explain_path,
    explain_popular_prediction,
    pick_reason,
    plural,
)

if TYPE_CHECKING:
    from recommender.core.config import Settings
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import Storage, StoredRating
    from recommender.scoring.model import ServingModel
    from recommender.serving.catalog import Catalog

__all__ = [
    "Pick",
    "Prediction",
    "RatingResult",
    "Recommendations",
    "RecommenderService",
    "ServiceStats",
    "ServingPath",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Event], Awaitable[None]]

#: How often (seconds) a request may look at the registry's ``current`` pointer.
RELOAD_CHECK_SECONDS = 5.0
#: A version that failed to load is retried after this long (it may have been repaired).
FAILED_RETRY_SECONDS = 60.0
#: Folded-in members kept in memory (a vector of the model's dimension each).
FOLD_CACHE_SIZE = 10_000
# Members whose ratings are kept in memory (least recently served dropped first).
RATINGS_CACHE_SIZE = 1_024


@dataclass(frozen=True, slots=True)
class Pick:
    movie: Movie
    stars: float
    reason: str


@dataclass(frozen=True, slots=True)
class Recommendations:
    picks: list[Pick]
    path: ServingPath
    explanation: str
    model_version: str | None


@dataclass(frozen=True, slots=True)
class Prediction:
    movie: Movie
    stars: float
    path: ServingPath
    explanation: str
    #: the member's own stars for this movie, if they rated it
    rated: float | None = None


@dataclass(frozen=True, slots=True)
class RatingResult:
    movie: Movie
    stars: float
    previous: float | None
    n_ratings: int


@dataclass(frozen=True, slots=True)
class ServiceStats:
    ratings: int
    members: int
    catalog_size: int
    model_version: str | None
    model_family: str | None
    model_metrics: dict = field(default_factory=dict)
    model_trained_at: float | None = None
    #: "ok", "unavailable: <reason>" (serving popularity) or "ok; <version> unavailable: <reason>"
    model_status: str = "unavailable: no model loaded"
    ratings_since_training: int = 0
    retrain_running: bool = False

    # Short names the bot's renderer reads; same values as the fields above.
    @property
    def movies(self) -> int:
        return self.catalog_size

    @property
    def trained_at(self) -> float | None:
        return self.model_trained_at

    @property
    def new_ratings(self) -> int:
        return self.ratings_since_training

    @property
    def metrics(self) -> dict:
        return self.model_metrics


class Worker(Protocol):
    """What the service needs from ``worker.TrainingWorker``: run one training, return the done event."""

    async def run(self, *, on_progress: ProgressCallback | None = None, force: bool = False) -> Done: ...


@dataclass(frozen=True, slots=True)
class _Taste:
    """How one member is served by one model snapshot for one request."""

    path: ServingPath
    user: tuple[np.ndarray, float] | None
    n_ratings: int
    popularity_reason: str = "no_ratings"

    @property
    def explanation(self) -> str:
        return explain_path(self.path, n_ratings=self.n_ratings, popularity_reason=self.popularity_reason)


class RecommenderService:
    """Rate, recommend, predict, similar, retrain: the operations behind the bot's commands."""

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
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.registry = registry
        self.scale = scale
        self.worker = worker
        self.reload_check_seconds = reload_check_seconds
        self._popularity: dict[int, tuple[int, float, float]] = dict(popularity or {})
        # Best first, the same order as popularity.bayesian_popularity: score, count, then id.
        self._popular_ids: list[int] = sorted(
            self._popularity, key=lambda m: (-self._popularity[m][2], -self._popularity[m][0], m)
        )
        self._model: ServingModel | None = None
        self._model_status = "unavailable: no model loaded yet"
        self._last_check = -math.inf
        self._failed: tuple[str | None, float] | None = None  # (version, monotonic time) of the last failure
        self._reload_task: asyncio.Task[None] | None = None
        self._retrain_lock = asyncio.Lock()
        self._exit_stack: contextlib.AsyncExitStack | None = None
        # user_id -> (model version, n ratings, newest rated_at, n used, folded-in user); the key
        # fields make a stale entry miss even if a write bypassed rate()/forget()
        self._fold_cache: dict[int, tuple[str, int, float, int, tuple[np.ndarray, float]]] = {}
        # Reading 500 ratings from SQLite took ~1.4 ms of every /recommend (bench_serving); a cached
        # list is checked against the database's (count, newest rated_at) on every use instead, so a
        # write from anywhere (another request, process or tool) is seen at once.
        self._ratings_cache: OrderedDict[int, tuple[tuple[int, float | None], tuple[StoredRating, ...]]]
        self._ratings_cache = OrderedDict()

    # ----------------------------------------------------------------------------------- lifecycle
    @classmethod
    async def open(cls, settings: Settings, *, worker: Worker | None = None) -> RecommenderService:
        """Open storage, build the catalog from it, load the current model off the event loop."""
        from recommender.persistence.registry import Registry
        from recommender.persistence.storage import Storage
        from recommender.serving.catalog import Catalog

        started = time.perf_counter()
        stack = contextlib.AsyncExitStack()
        try:
            storage = await stack.enter_async_context(Storage(settings.db_path))
            movies = await storage.all_movies()
            popularity = await storage.popularity()
            dataset = await storage.catalog_dataset() or settings.movielens_dataset
            if dataset != settings.movielens_dataset:
                # Stored ratings refer to the stored catalog, so its scale is the one to validate against.
                log.warning(
                    "the database holds the %s catalog but MOVIELENS_DATASET=%s; serving %s",
                    dataset,
                    settings.movielens_dataset,
                    dataset,
                )
            if not movies:
                log.warning(
                    "the movie catalog in %s is empty; run `python -m bot --prepare-only`", settings.db_path
                )
            # Autocomplete ranks near-ties by how well known a movie is (its rating count), not by
            # how well rated: "star" should offer Star Wars before an obscure, highly rated film.
            catalog = await asyncio.to_thread(Catalog, movies, {m: p[0] for m, p in popularity.items()})
            if worker is None:
                worker = _default_worker(settings)
            service = cls(
                storage,
                catalog,
                Registry(settings.models_dir),
                DATASETS[dataset].scale,
                popularity=popularity,
                worker=worker,
            )
            service._exit_stack = stack
            await service.reload_model_async()
        except BaseException:
            await stack.aclose()
            raise
        log.info(
            "service ready in %.2f s: %d movies, model %s",
            time.perf_counter() - started,
            len(catalog),
            service.model_version or "none (popularity)",
        )
        return service

    async def close(self) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        if self._exit_stack is not None:
            await self._exit_stack.aclose()
            self._exit_stack = None

    async def __aenter__(self) -> RecommenderService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------- model reload
    @property
    def model(self) -> ServingModel | None:
        return self._model

    @property
    def model_version(self) -> str | None:
        return self._model.version if self._model is not None else None

    def _load(self) -> tuple[ServingModel | None, str | None, str]:
        """Load the registry's current version (blocking). Returns (model, version, error)."""
        version: str | None = None
        try:
            version = self.registry.current_version()
            if version is None:
                return None, None, "no model has been published yet"
            return self.registry.load_current(), version, ""
        except RecommenderError as exc:  # NoModel: missing, corrupt or half-written
            return None, version, str(exc)
        except Exception as exc:  # serving must survive any broken artifact; keep the traceback in the log
            log.exception("loading model version %s failed", version)
            return None, version, f"{type(exc).__name__}: {exc}"

    def _install(self, model: ServingModel | None, version: str | None, error: str) -> str | None:
        if model is not None:
            previous = self.model_version
            self._model = model  # one reference swap: requests in flight keep their own snapshot
            self._model_status = "ok"
            self._failed = None
            self._fold_cache.clear()
            if previous != model.version:
                log.info(
                    "serving model %s (%s), was %s", model.version, model.family, previous or "popularity"
                )
            return model.version
        self._failed = (version, time.monotonic())
        if self._model is None:
            self._model_status = f"unavailable: {error}"
            log.warning("no usable model (%s); serving popular picks", error)
        else:
            # A newer version that cannot be read must not take away a working one.
            self._model_status = f"ok; version {version} unavailable: {error}"
            log.warning(
                "model version %s unusable (%s); still serving %s", version, error, self.model_version
            )
        return self.model_version

    def reload_model(self) -> str | None:
        """Load the registry's current version now (blocking); returns the version being served."""
        self._last_check = time.monotonic()
        return self._install(*self._load())

    async def reload_model_async(self) -> str | None:
        """:meth:`reload_model` with the file reading done off the event loop."""
        self._last_check = time.monotonic()
        loaded = await asyncio.to_thread(self._load)
        return self._install(*loaded)

    def _maybe_reload(self) -> None:
        """Cheap check, at most every few seconds, for a newly published version; loads in background."""
        now = time.monotonic()
        if now - self._last_check < self.reload_check_seconds:
            return
        if self._reload_task is not None and not self._reload_task.done():
            return
        self._last_check = now
        try:
            current = self.registry.current_version()
        except Exception:
            log.exception("reading the registry's current pointer failed")
            return
        if current is None or current == self.model_version:
            return
        if (
            self._failed is not None
            and self._failed[0] == current
            and now - self._failed[1] < FAILED_RETRY_SECONDS
        ):
            return
        log.info("model version %s was published; loading it in the background", current)
        self._reload_task = asyncio.get_running_loop().create_task(self._background_reload())

    async def _background_reload(self) -> None:
        await self.reload_model_async()

    # ------------------------------------------------------------------------------------ ratings
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
        if not self.scale.is_valid(stars):
            raise InvalidStars(stars, self.scale)
        movie = self._movie(movie_id)
        self._forget_cached(user_id)
        try:
            stored, previous = await self.storage.upsert_rating(
                user_id, movie.movie_id, float(stars), guild_id
            )
        finally:
            self._forget_cached(user_id)
        n = len(await self.storage.user_ratings(user_id))  # not cached: the next request refills it
        return RatingResult(movie, stored.stars, previous, n)

    async def ratings(self, user_id: int) -> list[tuple[Movie, StoredRating]]:
        """The member's ratings, newest first, with their movies."""
        rows = await self._member_ratings(user_id)
        return [(self.catalog.get(r.movie_id) or Movie(r.movie_id, f"movie #{r.movie_id}"), r) for r in rows]

    async def forget(self, user_id: int) -> int:
        """Delete every rating of one member; returns how many were deleted."""
        self._forget_cached(user_id)
        try:
            return await self.storage.delete_user(user_id)
        finally:
            self._forget_cached(user_id)

    def _forget_cached(self, user_id: int) -> None:
        self._ratings_cache.pop(user_id, None)
        self._fold_cache.pop(user_id, None)

    async def _member_ratings(self, user_id: int) -> Sequence[StoredRating]:
        """The member's ratings, newest first: from memory while the database says they're current."""
        cached = self._ratings_cache.get(user_id)
        if cached is not None and cached[0] == await self.storage.ratings_fingerprint(user_id):
            self._ratings_cache.move_to_end(user_id)
            return cached[1]
        rows = tuple(await self.storage.user_ratings(user_id))
        # The entry's key is computed from the rows themselves, so a read that raced a write can only
        # cache a list whose fingerprint no longer matches: the next use re-reads it.
        newest = max((r.rated_at for r in rows), default=None)
        self._ratings_cache[user_id] = ((len(rows), newest), rows)
        self._ratings_cache.move_to_end(user_id)
        if len(self._ratings_cache) > RATINGS_CACHE_SIZE:
            self._ratings_cache.popitem(last=False)
        return rows

    # ------------------------------------------------------------------------------ serving paths
    def _taste(self, model: ServingModel | None, user_id: int, rated: Sequence[StoredRating]) -> _Taste:
        """Choose the serving path for one member against one model snapshot."""
        if not rated:
            return _Taste(ServingPath.POPULARITY, None, 0, "no_ratings")
        if model is None:
            return _Taste(ServingPath.POPULARITY, None, len(rated), "no_model")
        from recommender.core.types import member_key

        newest = max(r.rated_at for r in rated)
        trained = model.user_vector(member_key(user_id))
        if trained is not None and newest <= _ratings_cutoff(model):
            return _Taste(ServingPath.TRAINED, trained, len(rated))
        cached = self._fold_cache.get(user_id)
        if cached is not None and cached[:3] == (model.version, len(rated), newest):
            return _Taste(ServingPath.FOLD_IN, cached[4], cached[3])
        known = [r for r in rated if model.has_movie(r.movie_id)]
        if not known:
            return _Taste(ServingPath.POPULARITY, None, len(rated), "unknown_movies")
        user = model.fold_in([r.movie_id for r in known], [r.stars for r in known])
        if len(self._fold_cache) >= FOLD_CACHE_SIZE:
            self._fold_cache.clear()  # crude bound; a refill costs one solve per member
        self._fold_cache[user_id] = (model.version, len(rated), newest, len(known), user)
        return _Taste(ServingPath.FOLD_IN, user, len(known))

    def _popular_stars(self, movie_id: int, model: ServingModel | None) -> tuple[float, int]:
        """A movie's Bayesian-average stars and rating count, or the overall mean if nobody rated it."""
        entry = self._popularity.get(movie_id)
        if entry is not None:
            return float(entry[2]), int(entry[0])
        if model is not None:
            return float(model.global_mean), 0
        return (self.scale.minimum + self.scale.maximum) / 2, 0

    def _popular_picks(self, k: int, exclude: Iterable[int]) -> list[Pick]:
        excluded = set(exclude)
        picks: list[Pick] = []
        for movie_id in self._popular_ids:
            if movie_id in excluded:
                continue
            movie = self.catalog.get(movie_id)
            if movie is None:
                continue
            count, _mean, score = self._popularity[movie_id]
            picks.append(Pick(movie, float(score), pick_reason(ServingPath.POPULARITY, score, count=count)))
            if len(picks) == k:
                break
        return picks

    async def recommend(self, user_id: int, k: int = 5) -> Recommendations:
        """``k`` movies the member has not rated, best first, and how they were chosen."""
        self._maybe_reload()
        model = self._model  # one snapshot for the whole request, even if a reload swaps it meanwhile
        rated = await self._member_ratings(user_id)
        taste = self._taste(model, user_id, rated)
        exclude = {r.movie_id for r in rated}
        if taste.user is None or model is None:
            picks = self._popular_picks(k, exclude)
            return Recommendations(picks, taste.path, taste.explanation, model.version if model else None)
        picks = []
        # Ask for a few extra in case the model knows movies the catalog doesn't (a different dataset).
        for movie_id, stars in model.recommend(taste.user, k + 10, exclude):
            movie = self.catalog.get(int(movie_id))
            if movie is None or movie.movie_id in exclude:
                continue
            picks.append(Pick(movie, float(stars), pick_reason(taste.path, float(stars))))
            if len(picks) == k:
                break
        return Recommendations(picks, taste.path, taste.explanation, model.version)

    async def predict(self, user_id: int, movie_id: int) -> Prediction:
        """How many stars the member would give one movie, and how that was worked out."""
        self._maybe_reload()
        model = self._model
        movie = self._movie(movie_id)
        rated = await self._member_ratings(user_id)
        own = next((r.stars for r in rated if r.movie_id == movie.movie_id), None)
        taste = self._taste(model, user_id, rated)
        if taste.user is None or model is None:
            stars, count = self._popular_stars(movie.movie_id, model)
            text = explain_popular_prediction(taste.popularity_reason, count=count, stars=stars)
            path = ServingPath.POPULARITY
        elif model.has_movie(movie.movie_id):
            stars = float(model.predict(taste.user, np.asarray([movie.movie_id]))[0])
            path, text = taste.path, taste.explanation
        else:
            stars = float(model.predict_content(taste.user, movie.genres, movie.year))
            path = ServingPath.CONTENT
            text = explain_path(path, n_ratings=taste.n_ratings)
        if own is not None:
            text += f"; you rated it {own:g}★"
        return Prediction(movie, self.scale.clip(stars), path, text, own)

    async def similar(self, movie_id: int, k: int = 5) -> list[Pick]:
        """Movies like this one: by learned item factors, else popular movies sharing its genres."""
        self._maybe_reload()
        model = self._model
        movie = self._movie(movie_id)
        picks: list[Pick] = []
        if model is not None and model.has_movie(movie.movie_id):
            for other_id, similarity in model.similar(movie.movie_id, k + 10):
                other = self.catalog.get(int(other_id))
                if other is None or other.movie_id == movie.movie_id:
                    continue
                stars, _count = self._popular_stars(other.movie_id, model)
                picks.append(Pick(other, stars, f"liked by the same people (similarity {similarity:.2f})"))
                if len(picks) == k:
                    return picks
        if picks:
            return picks
        return self._similar_by_genre(movie, k, model)

    def _similar_by_genre(self, movie: Movie, k: int, model: ServingModel | None) -> list[Pick]:
        genres = set(movie.genres)
        if not genres:
            return []
        # Most shared genres first, then popularity; the popular list is already in popularity order.
        ranked: list[tuple[int, int, Movie]] = []
        for rank, other_id in enumerate(self._popular_ids):
            if other_id == movie.movie_id:
                continue
            other = self.catalog.get(other_id)
            if other is None:
                continue
            shared = len(genres.intersection(other.genres))
            if shared:
                ranked.append((-shared, rank, other))
        ranked.sort(key=lambda t: (t[0], t[1]))
        picks = []
        for neg_shared, _rank, other in ranked[:k]:
            stars, _count = self._popular_stars(other.movie_id, model)
            picks.append(Pick(other, stars, f"popular and shares {plural(-neg_shared, 'genre')} with it"))
        return picks

    # -------------------------------------------------------------------------------- catalog
    def search(self, query: str, limit: int = 25) -> list[Movie]:
        return self.catalog.search(query, limit)

    def resolve(self, text: str) -> Movie:
        return self.catalog.resolve(text)

    # ----------------------------------------------------------------------------- stats/retrain
    async def stats(self) -> ServiceStats:
        self._maybe_reload()
        model = self._model
        counts = await self.storage.stats()
        since = await self.storage.count_ratings(since=_ratings_cutoff(model) if model is not None else None)
        return ServiceStats(
            ratings=int(counts.get("ratings", 0)),
            members=int(counts.get("members", 0)),
            catalog_size=len(self.catalog),
            model_version=model.version if model is not None else None,
            model_family=model.family if model is not None else None,
            model_metrics=dict(model.metrics) if model is not None else {},
            model_trained_at=model.trained_at if model is not None else None,
            model_status=self._model_status,
            ratings_since_training=since,
            retrain_running=self._retrain_lock.locked(),
        )

    async def retrain(self, on_progress: ProgressCallback | None = None, *, force: bool = False) -> Done:
        """Train a new version in the worker (one at a time), record it, and serve it if published."""
        if self.worker is None:
            raise RecommenderError("Retraining isn't set up on this bot.")
        if self._retrain_lock.locked():
            raise RetrainInProgress()
        async with self._retrain_lock:
            done = await self.worker.run(on_progress=on_progress, force=force)
            version, published = done.version, done.published
            if published and version:
                await self.reload_model_async()
                if self.model_version != version:
                    log.warning("retrain published %s but the service serves %s", version, self.model_version)
            if version:
                model = self._model if self.model_version == version else None
                await self.storage.record_model_version(
                    version,
                    done.family or (model.family if model is not None else "unknown"),
                    dict(done.metrics),
                    float(done.trained_at or (model.trained_at if model is not None else time.time())),
                    published,
                )
            return done


def _ratings_cutoff(model: ServingModel) -> float:
    """Ratings stored up to this time are in the model's training data.

    train.py records when the run started (metrics ``trained_at``) and reads member ratings after
    that, so the start is a safe cutoff: a rating made during training is folded in rather than
    wrongly assumed to be learned.
    """
    candidates = [float(model.trained_at)]
    started = model.metrics.get("trained_at") if isinstance(model.metrics, dict) else None
    if isinstance(started, int | float) and not isinstance(started, bool):
        candidates.append(float(started))
    # 0 or a missing value means "unknown", not "the epoch": ignoring it keeps trained members on
    # their learned embedding instead of folding every one of them in.
    known = [t for t in candidates if math.isfinite(t) and t > 0]
    return min(known) if known else 0.0


def _default_worker(settings: Settings) -> Worker | None:
    """The pipeline's TrainingWorker for these settings (None if it cannot be built here)."""
    try:
        from recommender.pipeline.worker import TrainingWorker
    except ImportError:
        log.warning("recommender.pipeline.worker is not available; /retrain is disabled")
        return None
    return TrainingWorker(settings)
