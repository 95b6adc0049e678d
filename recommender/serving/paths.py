"""The request paths: trained, fold-in, popularity and content. Pure functions of one model snapshot.

``choose_taste`` decides how one member is served by one snapshot; the pick builders turn that
into ``Pick``s with a reason code and the number behind it. No storage, no reloading here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.core.types import Movie, RatingScale, member_key
from recommender.persistence.storage import StoredRating
from recommender.scoring.linalg import top_k
from recommender.scoring.model import ServingModel
from recommender.serving.caches import FoldCache, FoldEntry, UserVector
from recommender.serving.catalog import Catalog
from recommender.serving.contract import Pick, PickReason, PopularityReason, ServingPath

__all__ = [
    "Popularity",
    "Taste",
    "choose_taste",
    "new_movie_pick",
    "personal_picks",
    "predict_stars",
    "ratings_cutoff",
    "similar_picks",
    "with_new_movie",
]

#: Extra candidates asked of the model, in case it knows movies the catalogue doesn't.
SPARE = 10

#: A member's filter on picks (``PickFilter.matches``); None keeps every movie.
Keep = Callable[[Movie], bool] | None


@dataclass(frozen=True, slots=True)
class Taste:
    """How one member is served by one model snapshot for one request."""

    path: ServingPath
    user: UserVector | None
    n_ratings: int
    popularity_reason: PopularityReason | None = None


def ratings_cutoff(model: ServingModel) -> float:
    """Ratings stored up to this time are in the model's training data.

    The trainer records when the run started (metrics ``trained_at``) and reads member ratings after
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


def choose_taste(
    model: ServingModel | None,
    user_id: int,
    rated: Sequence[StoredRating],
    folds: FoldCache,
    imported_at: float | None = None,
) -> Taste:
    """The serving path for one member against one snapshot (folding in, and caching, if needed).

    ``imported_at``: when the member last imported a history, whose ratings keep their own (older)
    dates; an import after the training means the learned vector is out of date too.
    """
    if not rated:
        return Taste(ServingPath.POPULARITY, None, 0, PopularityReason.NO_RATINGS)
    if model is None:
        return Taste(ServingPath.POPULARITY, None, len(rated), PopularityReason.NO_MODEL)
    newest = max(max(r.rated_at for r in rated), imported_at or 0.0)
    trained = model.user_vector(member_key(user_id))
    if trained is not None and newest <= ratings_cutoff(model):
        return Taste(ServingPath.TRAINED, trained, len(rated))
    cached = folds.get(user_id, model.version, len(rated), newest)
    if cached is not None:
        return Taste(ServingPath.FOLD_IN, cached.user, cached.n_used)
    known = [r for r in rated if model.has_movie(r.movie_id)]
    if not known:
        return Taste(ServingPath.POPULARITY, None, len(rated), PopularityReason.UNKNOWN_MOVIES)
    user = model.fold_in([r.movie_id for r in known], [r.stars for r in known])
    folds.put(user_id, FoldEntry(model.version, len(rated), newest, len(known), user))
    return Taste(ServingPath.FOLD_IN, user, len(known))


class Popularity:
    """The dataset's Bayesian-average popularity: the answer when there is no personal one."""

    def __init__(self, table: Mapping[int, tuple[int, float, float]], scale: RatingScale) -> None:
        #: movie_id -> (rating count, mean, Bayesian score)
        self.table: dict[int, tuple[int, float, float]] = dict(table)
        self.scale = scale
        # Best first, the same order as popularity.bayesian_popularity: score, count, then id.
        self.ranked: list[int] = sorted(self.table, key=lambda m: (-self.table[m][2], -self.table[m][0], m))

    def stars(self, movie_id: int, model: ServingModel | None) -> tuple[float, int]:
        """A movie's Bayesian-average stars and rating count; the overall mean if nobody rated it."""
        entry = self.table.get(movie_id)
        if entry is not None:
            return float(entry[2]), int(entry[0])
        if model is not None:
            return float(model.global_mean), 0
        return (self.scale.minimum + self.scale.maximum) / 2, 0

    def picks(self, k: int, exclude: Iterable[int], catalog: Catalog, keep: Keep = None) -> list[Pick]:
        excluded = set(exclude)
        picks: list[Pick] = []
        for movie_id in self.ranked:
            if movie_id in excluded:
                continue
            movie = catalog.get(movie_id)
            if movie is None or (keep is not None and not keep(movie)):
                continue
            count, _mean, score = self.table[movie_id]
            picks.append(Pick(movie, float(score), PickReason.POPULAR, ratings=int(count)))
            if len(picks) == k:
                break
        return picks

    def by_genre(self, movie: Movie, k: int, catalog: Catalog, model: ServingModel | None) -> list[Pick]:
        """Popular movies sharing the most genres with ``movie``."""
        genres = set(movie.genres)
        if not genres:
            return []
        ranked: list[tuple[int, int, Movie]] = []
        for rank, other_id in enumerate(self.ranked):
            if other_id == movie.movie_id:
                continue
            other = catalog.get(other_id)
            if other is None:
                continue
            shared = len(genres.intersection(other.genres))
            if shared:
                ranked.append((-shared, rank, other))
        ranked.sort(key=lambda t: (t[0], t[1]))
        picks = []
        for neg_shared, _rank, other in ranked[:k]:
            stars, _count = self.stars(other.movie_id, model)
            picks.append(Pick(other, stars, PickReason.SHARED_GENRES, shared_genres=-neg_shared))
        return picks


def personal_picks(
    model: ServingModel,
    user: UserVector,
    k: int,
    exclude: set[int],
    catalog: Catalog,
    keep: Keep = None,
    rated: Sequence[StoredRating] = (),
) -> list[Pick]:
    """The model's top ``k`` for a member, among catalogue movies they have not rated.

    With a ranking model and ``rated`` (the member's ratings) the order is the ranking model's and
    each pick names the rated movies it rests on; the stars shown stay the rating model's.
    """
    if model.ranker is not None and rated:
        ranked = ranked_picks(model, user, k, exclude, catalog, keep, rated)
        if ranked is not None:
            return ranked
    picks: list[Pick] = []
    # A filter may reject most of the top: rank every movie then (one sort, milliseconds).
    wanted = k + SPARE if keep is None else len(model.movie_ids)
    for movie_id, stars in model.recommend(user, wanted, exclude):
        movie = catalog.get(int(movie_id))
        if movie is None or movie.movie_id in exclude or (keep is not None and not keep(movie)):
            continue
        picks.append(Pick(movie, float(stars), PickReason.PREDICTED))
        if len(picks) == k:
            break
    return picks


def ranked_picks(
    model: ServingModel,
    user: UserVector,
    k: int,
    exclude: set[int],
    catalog: Catalog,
    keep: Keep,
    rated: Sequence[StoredRating],
) -> list[Pick] | None:
    """Top ``k`` by the ranking model; None when it knows none of the member's movies."""
    ranker = model.ranker
    assert ranker is not None
    ordered = sorted(rated, key=lambda r: r.rated_at)  # the ranker reads a history oldest first
    history = ranker.history([r.movie_id for r in ordered])
    if history.empty:
        return None
    scores, scales = model.served_scores(history, user)
    blocked = ranker.movie_index(list(exclude))
    scores[blocked[blocked >= 0]] = -np.inf
    wanted = k + SPARE if keep is None else ranker.size
    chosen: list[tuple[int, Movie]] = []
    for i in top_k(scores, ranker.movie_ids, wanted).tolist():
        movie = catalog.get(int(ranker.movie_ids[i]))
        if movie is None or movie.movie_id in exclude or (keep is not None and not keep(movie)):
            continue
        chosen.append((i, movie))
        if len(chosen) == k:
            break
    if not chosen:
        return []
    stars = model.predict(user, [m.movie_id for _, m in chosen])
    given = {r.movie_id: r.stars for r in rated}
    reasons = ranker.because(history, np.array([i for i, _ in chosen], dtype=np.int64), scales)
    picks = []
    for (_, movie), s, why in zip(chosen, stars.tolist(), reasons, strict=True):
        because = tuple(
            (m, given[movie_id]) for movie_id, _share in why if (m := catalog.get(movie_id)) is not None
        )
        picks.append(Pick(movie, float(s), PickReason.PREDICTED, because=because))
    return picks


def predict_stars(model: ServingModel, user: UserVector, movie: Movie) -> tuple[float, ServingPath | None]:
    """The model's stars for one movie; path CONTENT when it has no embedding for it."""
    if model.has_movie(movie.movie_id):
        return float(model.predict(user, np.asarray([movie.movie_id]))[0]), None
    return float(model.predict_content(user, movie.genres, movie.year)), ServingPath.CONTENT


def new_movie_pick(
    model: ServingModel, user: UserVector, movies: Iterable[Movie], exclude: Collection[int]
) -> Pick | None:
    """The added movie (not learned yet) this member would like most, by its genres and year."""
    best: Pick | None = None
    for movie in movies:
        if movie.movie_id in exclude or model.has_movie(movie.movie_id):
            continue
        stars = model.predict_content(user, movie.genres, movie.year)
        if best is None or stars > best.stars:
            best = Pick(movie, float(stars), PickReason.NEW_MOVIE)
    return best


def with_new_movie(picks: list[Pick], new: Pick | None, k: int) -> list[Pick]:
    """``picks`` with an added movie in the list when its content score fits this member's taste:
    at least the stars of the weakest pick (it takes that place), or a list shorter than ``k``."""
    if new is None or k <= 0:
        return picks
    if len(picks) >= k:
        if new.stars < min(p.stars for p in picks):
            return picks
        picks = picks[: k - 1]
    at = next((i for i, p in enumerate(picks) if p.stars < new.stars), len(picks))
    return [*picks[:at], new, *picks[at:]]


def similar_picks(
    model: ServingModel | None, movie: Movie, k: int, catalog: Catalog, popularity: Popularity
) -> list[Pick]:
    """Movies like this one by learned item factors, else popular movies sharing its genres."""
    picks: list[Pick] = []
    if model is not None and model.has_movie(movie.movie_id):
        for other_id, similarity in model.similar(movie.movie_id, k + SPARE):
            other = catalog.get(int(other_id))
            if other is None or other.movie_id == movie.movie_id:
                continue
            stars, _count = popularity.stars(other.movie_id, model)
            picks.append(Pick(other, stars, PickReason.SIMILAR, similarity=float(similarity)))
            if len(picks) == k:
                return picks
    if picks:
        return picks
    return popularity.by_genre(movie, k, catalog, model)
