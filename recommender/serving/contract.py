"""The seam between the bot and the recommender: what the bot may ask, and the values it gets back.

The recommender answers with codes and numbers (which serving path, why a movie was picked, how
many ratings that rests on); every word a member reads is written by ``bot/``. ``MovieService`` is
implemented by :class:`recommender.serving.service.RecommenderService` and by the bot tests' fake;
``tests/bot/test_contract.py`` holds both to it.

Errors: every method may raise a :class:`~recommender.core.errors.RecommenderError` subclass, whose
type and fields say what went wrong (listed per method below); anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from recommender.core.errors import RecommenderError
from recommender.core.types import Movie, RatingScale
from recommender.data.imports import ImportFormat, RejectCode
from recommender.persistence.storage import StoredRating
from recommender.pipeline.protocol import Done, Event
from recommender.serving.codes import PickFilter, PopularityReason, ServingPath
from recommender.serving.group_contract import (
    MAX_GROUP,
    MIN_GROUP,
    GroupMovie,
    GroupPicks,
    GroupReason,
    GroupService,
    GroupTaste,
    InvalidGroup,
    MovieNight,
    MovieNightEnd,
    MovieNightRefused,
    MovieNightState,
    NightProblem,
)

__all__ = [
    "MAX_GROUP",
    "MIN_GROUP",
    "ContentReason",
    "GroupMovie",
    "GroupPicks",
    "GroupReason",
    "GroupService",
    "GroupTaste",
    "ImportRefused",
    "ImportSummary",
    "InvalidGroup",
    "MovieNight",
    "MovieNightEnd",
    "MovieNightRefused",
    "MovieNightState",
    "MovieService",
    "NightProblem",
    "Pick",
    "PickFilter",
    "PickReason",
    "PopularityReason",
    "Prediction",
    "ProgressCallback",
    "RatingResult",
    "Recommendations",
    "RetrainHolder",
    "RetrainRecord",
    "ServiceStats",
    "ServingPath",
    "StoredRating",
]

#: Called with each typed event of a training run (``Start``, ``Epoch``, ...) as the worker reports it.
ProgressCallback = Callable[[Event], Awaitable[None]]


class PickReason(StrEnum):
    """Why one movie is in a list; the number it rests on is in the matching ``Pick`` field."""

    PREDICTED = "predicted"  # the model's stars for this member (``Pick.stars``)
    POPULAR = "popular"  # the Bayesian average of ``Pick.ratings`` ratings
    SIMILAR = "similar"  # learned item factors, cosine ``Pick.similarity``
    SHARED_GENRES = "shared_genres"  # popular and shares ``Pick.shared_genres`` genres
    NEW_MOVIE = "new_movie"  # added by an admin, not learned yet: ``Pick.stars`` from genres and year


class ContentReason(StrEnum):
    """Why a prediction came from genres and year (path CONTENT) rather than a learned embedding."""

    NOT_LEARNED = "not_learned"  # a dataset movie with too few ratings for the model
    ADDED_MOVIE = "added_movie"  # added by an admin since the model was trained


@dataclass(frozen=True, slots=True)
class Pick:
    movie: Movie
    stars: float
    reason: PickReason
    ratings: int = 0
    similarity: float = 0.0
    shared_genres: int = 0
    #: PREDICTED by the ranking model: the member's own rated movies that counted most for this
    #: pick, with the stars they gave (at most two, strongest first)
    because: tuple[tuple[Movie, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendations:
    picks: tuple[Pick, ...]
    path: ServingPath
    #: the member's ratings the answer rests on (for fold-in: those the model knows)
    n_ratings: int
    #: set when ``path`` is POPULARITY
    popularity_reason: PopularityReason | None
    model_version: str | None


@dataclass(frozen=True, slots=True)
class Prediction:
    movie: Movie
    stars: float
    path: ServingPath
    n_ratings: int
    popularity_reason: PopularityReason | None = None
    #: the member's own stars for this movie, if they rated it
    rated: float | None = None
    #: POPULARITY: how many ratings the movie's average is over (0: nobody's, the overall mean)
    movie_ratings: int = 0
    #: CONTENT: why the movie has no learned embedding
    content_reason: ContentReason | None = None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one ``/import`` did; the counts are distinct movies unless named rows."""

    format: ImportFormat
    rows: int  # data rows read from the file
    matched: int  # distinct movies matched to the catalogue
    inserted: int
    updated: int
    unchanged: int  # already rated so (or rated more recently in the bot, which wins)
    unmatched: int  # rows that named no catalogue movie or had a bad rating
    #: the unmatched rows with their line and reason, as a CSV file (empty when there are none)
    unmatched_csv: bytes
    rounded: bool  # halves were rounded to the dataset's whole stars
    skipped_unrated: int  # logged without a rating (Letterboxd)
    duplicates: int  # rows for a movie that a later row of the file replaced
    n_ratings: int  # the member's ratings after the import


class ImportRefused(RecommenderError):
    """The file as a whole can't be imported; nothing was written. ``code`` says why (the bot words it)."""

    def __init__(self, code: RejectCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail  # for logs
        super().__init__("I couldn't import that file; nothing was changed.")


@dataclass(frozen=True, slots=True)
class RatingResult:
    movie: Movie
    stars: float
    previous: float | None
    n_ratings: int


@dataclass(frozen=True, slots=True)
class RetrainRecord:
    """How one retrain ended, as stored (it survives a restart). ``trigger``: ``schedule`` or
    ``admin:<user id>``; ``version`` is set whenever a version was stored, published or not."""

    started_at: float
    finished_at: float
    trigger: str
    published: bool
    version: str | None
    reason: str
    metrics: Mapping[str, object] = field(default_factory=dict)

    @property
    def admin_id(self) -> int | None:
        return int(self.trigger.split(":", 1)[1]) if self.trigger.startswith("admin:") else None

    @property
    def failed(self) -> bool:
        return not self.published and not self.version


@dataclass(frozen=True, slots=True)
class RetrainHolder:
    """Who holds the retrain lock: this process's run (``ours``), or a trainer in another process."""

    pid: int
    host: str
    since: float
    trigger: str
    ours: bool
    same_host: bool


@dataclass(frozen=True, slots=True)
class ServiceStats:
    ratings: int
    members: int
    catalog_size: int
    model_version: str | None
    model_family: str | None
    model_metrics: Mapping[str, object] = field(default_factory=dict)
    model_trained_at: float | None = None
    #: "ok", "unavailable: <reason>" (serving popularity) or "ok; <version> unavailable: <reason>"
    model_status: str = "unavailable: no model loaded"
    ratings_since_training: int = 0
    retrain_running: bool = False


@runtime_checkable
class MovieService(GroupService, Protocol):
    """What the bot needs from the recommender. Member ids are Discord user ids. Group picks and
    movie nights are in :class:`~recommender.serving.group_contract.GroupService`."""

    @property
    def scale(self) -> RatingScale:
        """The stars the stored catalogue's dataset allows."""
        ...

    @property
    def model_version(self) -> str | None:
        """The version being served, None while serving popularity only."""
        ...

    async def rate(
        self, user_id: int, movie_id: int, stars: float, guild_id: int | None = None
    ) -> RatingResult:
        """Store (or replace) one rating. Raises ``InvalidStars``, ``UnknownMovie`` or
        ``StorageUnavailable``; nothing is stored then."""
        ...

    async def ratings(self, user_id: int) -> list[tuple[Movie, StoredRating]]:
        """The member's ratings, newest first. A movie no longer in the catalogue comes back as a
        placeholder ``Movie(movie_id, "movie #<id>")``; never raises for a member without ratings."""
        ...

    async def forget(self, user_id: int) -> int:
        """Delete all of one member's ratings; how many. Raises ``StorageUnavailable``."""
        ...

    async def recommend(
        self, user_id: int, k: int = 5, *, filters: PickFilter | None = None, skip: int = 0
    ) -> Recommendations:
        """Up to ``k`` movies the member has not rated or hidden, matching ``filters``, best first,
        after the ``skip`` best ("show more"). Never raises for a member."""
        ...

    async def predict(self, user_id: int, movie_id: int) -> Prediction:
        """The member's stars for one movie, within the scale. Raises ``UnknownMovie``."""
        ...

    async def similar(self, movie_id: int, k: int = 5, *, user_id: int | None = None) -> list[Pick]:
        """Up to ``k`` movies like this one (none that ``user_id`` hid). Raises ``UnknownMovie``."""
        ...

    async def poster(self, movie: Movie) -> str | None:
        """The movie's poster image URL for an embed thumbnail; None when posters are off (no
        ``TMDB_API_KEY``), the movie has no TMDB id, or TMDB gave none in time. Never raises."""
        ...

    def genres(self) -> list[str]:
        """The catalogue's genres, most common first: ``/recommend``'s choices, and the only ones an
        added movie may have."""
        ...

    async def import_ratings(self, user_id: int, data: bytes, guild_id: int | None = None) -> ImportSummary:
        """Read a Letterboxd / IMDb / MovieLens CSV and store its ratings in one transaction.
        Raises ``ImportRefused`` (nothing written) or ``StorageUnavailable``."""
        ...

    async def unrate(self, user_id: int, movie_id: int) -> Movie | None:
        """Delete one rating; the movie it was for, None if the member had not rated it.
        Raises ``StorageUnavailable``."""
        ...

    async def hide(self, user_id: int, movie_id: int) -> bool:
        """Never recommend this movie to the member again; False if it was hidden already.
        Raises ``UnknownMovie``, ``StorageUnavailable``."""
        ...

    async def unhide(self, user_id: int, movie_id: int) -> bool:
        """Recommend it again; False if it was not hidden."""
        ...

    async def hidden(self, user_id: int) -> list[Movie]:
        """The member's hidden movies, most recently hidden first."""
        ...

    async def add_to_watchlist(self, user_id: int, movie_id: int) -> bool:
        """False if it was on the watchlist already. Raises ``UnknownMovie``, ``StorageUnavailable``."""
        ...

    async def remove_from_watchlist(self, user_id: int, movie_id: int) -> bool:
        """False if it was not on the watchlist."""
        ...

    async def watchlist(self, user_id: int) -> list[Movie]:
        """The member's watchlist, most recently added first."""
        ...

    def search(self, query: str, limit: int, max_len: int | None = None) -> list[Movie]:
        """Autocomplete: at most ``limit`` movies, ``display`` cut to ``max_len``. Never raises."""
        ...

    def resolve(self, text: str) -> Movie:
        """A movie id in digits, "Title (Year)" or a unique title. Raises ``UnknownMovie`` with
        suggestions (a digit string that is no id is tried as a title first)."""
        ...

    async def stats(self) -> ServiceStats:
        """Counts and the serving model's state."""
        ...

    def added_movies(self) -> list[Movie]:
        """Movies added by admins (not from the dataset), oldest first."""
        ...

    async def add_movie(
        self, title: str, year: int, genres: str, imdb_id: str | None = None, *, added_by: int
    ) -> Movie:
        """Add a movie newer than the dataset (``genres`` comma-separated); rateable at once.
        Raises ``InvalidMovieDetails`` (``DuplicateMovie`` for a title+year or IMDb id already in
        the catalogue) or ``StorageUnavailable``; nothing is stored then."""
        ...

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
        """Correct an added movie (None keeps a field). Raises ``UnknownMovie``, ``NotAddedMovie``
        for a dataset movie, or ``InvalidMovieDetails``."""
        ...

    async def remove_movie(self, movie_id: int, *, removed_by: int) -> int:
        """Take an added movie out; its ratings are kept aside (returned: how many). Raises
        ``UnknownMovie`` or ``NotAddedMovie``."""
        ...

    async def retrain(
        self, on_progress: ProgressCallback | None = None, *, force: bool = False, trigger: str = "schedule"
    ) -> Done:
        """Train, record and (if published) serve a new version; the worker's "done" event. ``trigger``
        (``schedule`` or ``admin:<user id>``) is stored with the outcome. Raises ``RetrainInProgress``
        (``RetrainRunningElsewhere`` when another process trains), or ``RecommenderError`` when no
        worker is set up."""
        ...

    async def last_retrain(self) -> RetrainRecord | None:
        """The newest stored retrain outcome (from the database: it survives a restart)."""
        ...

    async def retrain_holder(self) -> RetrainHolder | None:
        """Who is training now, in this process or another; None when nobody is."""
        ...

    async def recover_retrain(self) -> RetrainRecord | None:
        """Record the outcome of a run whose process died (the bot was killed mid-retrain): the
        version it stored, or its failure; the record made now, else None (nothing to recover)."""
        ...

    async def stop_training(self, grace: float) -> bool:
        """End a training run in progress (for shutdown); True if one was running."""
        ...
