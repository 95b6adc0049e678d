"""A small in-memory ``MovieService`` for driving the bot without data files or TensorFlow.

It satisfies ``recommender.serving.contract.MovieService`` (``tests/bot/test_contract.py`` checks
that, and that every public method has the real service's signature) and returns the contract's
types, so the cogs see exactly what the real service gives them. Where the real service has a
rule the bot depends on (a digit string that is no id is tried as a title, a rated movie gone from
the catalogue is a placeholder, an unknown movie raises, a member is "trained" only if the last
training saw their ratings), the fake follows it. It records the calls it receives so tests can
check that the bot passed the right values through. Group picks and movie nights are in
``tests/bot/fake_nights.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from recommender.core.errors import (
    InvalidStars,
    NotAddedMovie,
    RecommenderError,
    RetrainInProgress,
    RetrainRunningElsewhere,
    UnknownMovie,
)
from recommender.core.types import DATASETS, Movie, RatingScale
from recommender.data.imports import ImportCatalog, ImportRejected, parse_import, unmatched_csv
from recommender.pipeline.protocol import Done, Epoch, Start
from recommender.serving import added as details
from recommender.serving.catalog import AmbiguousTitle, shortened
from recommender.serving.contract import (
    ImportRefused,
    ImportSummary,
    Pick,
    PickFilter,
    PickReason,
    PopularityReason,
    Prediction,
    ProgressCallback,
    RatingResult,
    Recommendations,
    RetrainHolder,
    RetrainRecord,
    ServiceStats,
    ServingPath,
    StoredRating,
)
from tests.bot.fake_nights import FakeGroups

MOVIES = [
    Movie(1, "Toy Story", 1995, ("Animation", "Comedy"), imdb_id=114709, tmdb_id=862),
    Movie(2, "Jumanji", 1995, ("Adventure",)),
    Movie(3, "Heat", 1995, ("Action", "Crime")),
    Movie(4, "Casino", 1995, ("Crime", "Drama")),
    Movie(5, "Sense and Sensibility", 1995, ("Drama", "Romance")),
    Movie(6, "GoldenEye", 1995, ("Action", "Adventure")),
    Movie(7, "Toy Story 2", 1999, ("Animation", "Comedy")),
    Movie(8, "The Matrix", 1999, ("Action", "Sci-Fi")),
    Movie(9, "A" * 150, 2001, ("Drama",)),  # a title longer than Discord's 100-character choice limit
    Movie(10, "The Thing", 1982, ("Horror", "Sci-Fi")),
    Movie(11, "The Thing", 2011, ("Horror", "Sci-Fi")),
] + [Movie(100 + i, f"Filler Movie {i}", 2000 + i % 20, ("Drama",)) for i in range(40)]


#: what a trained version's metrics.json leads with (see recommender/pipeline/publish.py)
FAKE_METRICS = {
    "val_rmse": 0.91,
    "test": {"n": 5000, "rmse": 0.8712, "mae": 0.67, "global_mean_rmse": 1.0431, "ndcg@5": 0.0312},
}


@dataclass
class FakeService(FakeGroups):
    scale: RatingScale = field(default_factory=lambda: DATASETS["ml-latest-small"].scale)
    movies: list[Movie] = field(default_factory=lambda: list(MOVIES))
    ratings_by_user: dict[int, dict[int, StoredRating]] = field(default_factory=dict)
    model_version: str | None = None
    trained_at: float = 0.0
    #: members whose ratings the last training saw (the real model has a vector for them)
    trained_members: set[int] = field(default_factory=set)
    calls: list[tuple[str, object]] = field(default_factory=list)
    #: set by a test to hold a retrain until it is released (see ``hold_retrain``)
    retrain_gate: Callable[[], Awaitable[None]] | None = None
    retrain_epochs: int = 5
    retrain_publish: bool = True
    plot_path: str | None = None
    search_error: Exception | None = None
    fail_with: Exception | None = None
    #: called with the method name at the start of every service call (tests check what Discord saw by then)
    probe: Callable[[str], None] | None = None
    #: whether a training run can be set up (the real service raises without a worker)
    can_retrain: bool = True
    hidden_by_user: dict[int, list[int]] = field(default_factory=dict)
    watchlist_by_user: dict[int, list[int]] = field(default_factory=dict)
    _retraining: bool = False
    #: stored retrain outcomes, oldest first (the real service keeps them in the database)
    retrain_runs: list[RetrainRecord] = field(default_factory=list)
    #: set by a test: a retrain running in another process (what the lock row would say)
    holder: RetrainHolder | None = None
    #: set by a test: what ``recover_retrain`` finds once (a run a dead process left behind)
    to_recover: RetrainRecord | None = None
    stopped_training: list[float] = field(default_factory=list)
    #: ids of the movies admins added (the rest came from the dataset)
    added: set[int] = field(default_factory=set)
    #: movie id -> poster URL, as a configured TMDB client would answer (empty: posters off)
    posters: dict[int, str] = field(default_factory=dict)

    def _probe(self, name: str) -> None:
        if self.probe is not None:
            self.probe(name)

    # -- catalog ---------------------------------------------------------------------------
    def _find(self, movie_id: int) -> Movie | None:
        return next((m for m in self.movies if m.movie_id == movie_id), None)

    def _get(self, movie_id: int) -> Movie:
        movie = self._find(movie_id)
        if movie is None:
            raise UnknownMovie(str(movie_id))
        return movie

    def search(self, query: str, limit: int, max_len: int | None = None) -> list[Movie]:
        self.calls.append(("search", query))
        if self.search_error is not None:
            raise self.search_error
        q = query.strip().lower()
        return [shortened(m, max_len) for m in self.movies if q in m.title.lower()][: max(0, limit)]

    def resolve(self, text: str) -> Movie:
        self.calls.append(("resolve", text))
        if text.strip().isdigit() and (movie := self._find(int(text))) is not None:
            return movie
        wanted = text.strip().lower()
        for movie in self.movies:  # digits that are no id are a title, as in the real catalogue
            if wanted == movie.display.lower():
                return movie
        same = [m for m in self.movies if m.title.lower() == wanted]
        if len(same) == 1:
            return same[0]
        if same:  # remakes, as the real catalogue tells them apart
            raise AmbiguousTitle(text, sorted(same, key=lambda m: m.year or 0))
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
        return [(self._find(r.movie_id) or Movie(r.movie_id, f"movie #{r.movie_id}"), r) for r in rows]

    async def forget(self, user_id: int) -> int:
        self._probe("forget")
        self.calls.append(("forget", user_id))
        if self.fail_with is not None:
            raise self.fail_with
        return len(self.ratings_by_user.pop(user_id, {}))

    # -- serving -----------------------------------------------------------------------------
    def _path(self, user_id: int) -> tuple[ServingPath, PopularityReason | None]:
        mine = self.ratings_by_user.get(user_id)
        if not mine:
            return ServingPath.POPULARITY, PopularityReason.NO_RATINGS
        if self.model_version is None:
            return ServingPath.POPULARITY, PopularityReason.NO_MODEL
        newest = max(r.rated_at for r in mine.values())
        if user_id in self.trained_members and newest <= self.trained_at:
            return ServingPath.TRAINED, None
        return ServingPath.FOLD_IN, None

    async def recommend(
        self, user_id: int, k: int = 5, *, filters: PickFilter | None = None, skip: int = 0
    ) -> Recommendations:
        self._probe("recommend")
        self.calls.append(("recommend", user_id))
        if filters is not None or skip:
            self.calls.append(("recommend_options", (filters, skip)))
        if self.fail_with is not None:
            raise self.fail_with
        path, why = self._path(user_id)
        rated = set(self.ratings_by_user.get(user_id, {}))
        reason = PickReason.POPULAR if path is ServingPath.POPULARITY else PickReason.PREDICTED
        hidden = set(self.hidden_by_user.get(user_id, []))
        unrated = [
            m
            for m in self.movies
            if m.movie_id not in rated
            and m.movie_id not in hidden
            and (filters is None or filters.matches(m))
        ][skip : skip + k]
        picks = tuple(Pick(m, 4.0, reason, ratings=10 if why else 0) for m in unrated)
        return Recommendations(picks, path, len(rated), why, self.model_version)

    async def predict(self, user_id: int, movie_id: int) -> Prediction:
        self._probe("predict")
        self.calls.append(("predict", (user_id, movie_id)))
        movie = self._get(movie_id)
        mine = self.ratings_by_user.get(user_id, {})
        path, why = self._path(user_id)
        own = mine[movie_id].stars if movie_id in mine else None
        return Prediction(movie, 3.5, path, len(mine), why, own, 10 if why else 0)

    async def similar(self, movie_id: int, k: int = 5, *, user_id: int | None = None) -> list[Pick]:
        self._probe("similar")
        self.calls.append(("similar", movie_id))
        self._get(movie_id)
        hidden = set(self.hidden_by_user.get(user_id, [])) if user_id is not None else set()
        others = [m for m in self.movies if m.movie_id != movie_id and m.movie_id not in hidden][:k]
        return [Pick(m, 4.0, PickReason.SIMILAR, similarity=0.9) for m in others]

    async def poster(self, movie: Movie) -> str | None:
        self._probe("poster")
        self.calls.append(("poster", movie.movie_id))
        return self.posters.get(movie.movie_id)

    def genres(self) -> list[str]:  # as the real service: most common first, then by name
        counts = Counter(g for m in self.movies if m.movie_id not in self.added for g in m.genres)
        return [g for g, _n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    # -- the member's lists --------------------------------------------------------------------
    async def import_ratings(self, user_id: int, data: bytes, guild_id: int | None = None) -> ImportSummary:
        """The real parser over the fake catalogue; stored like ``Storage.import_ratings``."""
        self._probe("import_ratings")
        self.calls.append(("import_ratings", (user_id, len(data), guild_id)))
        if self.fail_with is not None:
            raise self.fail_with
        imdb = {m.imdb_id: m.movie_id for m in self.movies if m.imdb_id}

        def resolve(title: str, year: int | None) -> int | None:
            hits = [m for m in self.movies if m.title.lower() == title.lower()]
            same = [m for m in hits if m.year == year]
            if len(same) == 1:
                return same[0].movie_id
            if len(hits) == 1 and (year is None or hits[0].year is None or abs(hits[0].year - year) <= 1):
                return hits[0].movie_id
            return None

        catalog = ImportCatalog(self.scale, {m.movie_id for m in self.movies}, imdb, resolve)
        try:
            result = parse_import(data, catalog)
        except ImportRejected as exc:
            raise ImportRefused(exc.code, exc.detail) from None
        mine = self.ratings_by_user.setdefault(user_id, {})
        inserted = updated = 0
        for row in result.matched:
            before = mine.get(row.movie_id)
            if before is not None and before.stars == row.stars:
                continue
            inserted += before is None
            updated += before is not None
            mine[row.movie_id] = StoredRating(user_id, row.movie_id, row.stars, guild_id, time.time())
        return ImportSummary(
            result.format,
            result.rows,
            len(result.matched),
            inserted,
            updated,
            len(result.matched) - inserted - updated,
            len(result.unmatched),
            unmatched_csv(result) if result.unmatched else b"",
            result.rounded,
            result.skipped_unrated,
            result.duplicates,
            len(mine),
        )

    async def unrate(self, user_id: int, movie_id: int) -> Movie | None:
        self._probe("unrate")
        self.calls.append(("unrate", (user_id, movie_id)))
        if self.fail_with is not None:
            raise self.fail_with
        row = self.ratings_by_user.get(user_id, {}).pop(movie_id, None)
        if row is None:
            return None
        return self._find(movie_id) or Movie(movie_id, f"movie #{movie_id}")

    def _add(self, lists: dict[int, list[int]], user_id: int, movie_id: int) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        self._get(movie_id)
        mine = lists.setdefault(user_id, [])
        if movie_id in mine:
            return False
        mine.insert(0, movie_id)
        return True

    def _remove(self, lists: dict[int, list[int]], user_id: int, movie_id: int) -> bool:
        mine = lists.get(user_id, [])
        if movie_id not in mine:
            return False
        mine.remove(movie_id)
        return True

    async def hide(self, user_id: int, movie_id: int) -> bool:
        self.calls.append(("hide", (user_id, movie_id)))
        return self._add(self.hidden_by_user, user_id, movie_id)

    async def unhide(self, user_id: int, movie_id: int) -> bool:
        self.calls.append(("unhide", (user_id, movie_id)))
        return self._remove(self.hidden_by_user, user_id, movie_id)

    async def hidden(self, user_id: int) -> list[Movie]:
        return [self._find(m) or Movie(m, f"movie #{m}") for m in self.hidden_by_user.get(user_id, [])]

    async def add_to_watchlist(self, user_id: int, movie_id: int) -> bool:
        self.calls.append(("watch", (user_id, movie_id)))
        return self._add(self.watchlist_by_user, user_id, movie_id)

    async def remove_from_watchlist(self, user_id: int, movie_id: int) -> bool:
        self.calls.append(("unwatch", (user_id, movie_id)))
        return self._remove(self.watchlist_by_user, user_id, movie_id)

    async def watchlist(self, user_id: int) -> list[Movie]:
        return [self._find(m) or Movie(m, f"movie #{m}") for m in self.watchlist_by_user.get(user_id, [])]

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
            model_metrics=dict(FAKE_METRICS) if self.model_version else {},
            model_trained_at=self.trained_at or None,
            model_status="ok" if self.model_version else "unavailable: no model loaded",
            ratings_since_training=new,
            retrain_running=self._retraining,
        )

    async def retrain(
        self, on_progress: ProgressCallback | None = None, *, force: bool = False, trigger: str = "schedule"
    ) -> Done:
        self._probe("retrain")
        self.calls.append(("retrain", force))
        if not self.can_retrain:
            raise RecommenderError("Retraining isn't set up on this bot.")
        if self._retraining:
            raise RetrainInProgress()
        if self.holder is not None:
            h = self.holder
            raise RetrainRunningElsewhere(h.pid, h.host, h.since, h.trigger, same_host=h.same_host)
        self._retraining = True
        started = time.time()
        try:
            done = await self._train(on_progress)
        finally:
            self._retraining = False
        self.retrain_runs.append(
            RetrainRecord(
                started, time.time(), trigger, done.published, done.version, done.reason, dict(done.metrics)
            )
        )
        return done

    async def _train(self, on_progress: ProgressCallback | None) -> Done:
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
        self.trained_members = {u for u, mine in self.ratings_by_user.items() if mine}
        return Done(
            ok=True,
            published=True,
            version=self.model_version,
            reason="first model",
            metrics=dict(FAKE_METRICS, epochs_run=self.retrain_epochs),
            plot=self.plot_path,
        )

    async def last_retrain(self) -> RetrainRecord | None:
        return self.retrain_runs[-1] if self.retrain_runs else None

    async def retrain_holder(self) -> RetrainHolder | None:
        if self._retraining:
            return RetrainHolder(4242, "here", time.time(), "schedule", ours=True, same_host=True)
        return self.holder

    async def recover_retrain(self) -> RetrainRecord | None:
        record, self.to_recover = self.to_recover, None
        if record is not None:
            self.retrain_runs.append(record)
        return record

    async def stop_training(self, grace: float) -> bool:
        self.stopped_training.append(grace)
        return self._retraining

    # -- added movies (the real service's checks: recommender.serving.added) ----------------------

    def added_movies(self) -> list[Movie]:
        return [m for m in self.movies if m.movie_id in self.added]

    async def add_movie(
        self, title: str, year: int, genres: str, imdb_id: str | None = None, *, added_by: int
    ) -> Movie:
        self._probe("add_movie")
        self.calls.append(("add_movie", (title, year, genres, imdb_id, added_by)))
        wanted = Movie(
            max(10_000_000, max(m.movie_id for m in self.movies) + 1),
            details.check_title(title),
            details.check_year(year),
            details.parse_genres(genres, self.genres()),
            details.parse_imdb(imdb_id),
        )
        details.check_new(self.movies, wanted)
        self.movies.append(wanted)
        self.added.add(wanted.movie_id)
        return wanted

    def _added_movie(self, movie_id: int) -> Movie:
        movie = self._get(movie_id)
        if movie_id not in self.added:
            raise NotAddedMovie(movie)
        return movie

    async def edit_movie(
        self,
        movie_id: int,
        *,
        title: str | None = None,
        year: int | None = None,
        genres: str | None = None,
        imdb_id: str | None = None,
        edited_by: int,
    ) -> Movie:
        self.calls.append(("edit_movie", (movie_id, title, year, genres, imdb_id, edited_by)))
        old = self._added_movie(movie_id)
        movie = Movie(
            old.movie_id,
            old.title if title is None else details.check_title(title),
            old.year if year is None else details.check_year(year),
            old.genres if genres is None else details.parse_genres(genres, self.genres()),
            old.imdb_id if imdb_id is None else details.parse_imdb(imdb_id),
        )
        details.check_new(self.movies, movie, ignore=movie_id)
        self.movies = [movie if m.movie_id == movie_id else m for m in self.movies]
        return movie

    async def remove_movie(self, movie_id: int, *, removed_by: int) -> int:
        self.calls.append(("remove_movie", (movie_id, removed_by)))
        self._added_movie(movie_id)
        self.movies = [m for m in self.movies if m.movie_id != movie_id]
        self.added.discard(movie_id)
        kept = 0
        for mine in self.ratings_by_user.values():
            kept += mine.pop(movie_id, None) is not None
        return kept

    # -- test helpers ------------------------------------------------------------------------
    def mark_trained(self, version: str = "v1") -> None:
        """As if a training run just saw every member's current ratings and was published."""
        self.model_version = version
        self.trained_at = time.time()
        self.trained_members = {u for u, mine in self.ratings_by_user.items() if mine}
