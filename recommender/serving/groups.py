"""Movie night: one pick a whole group will enjoy, from every member's predicted stars.

Numpy only. Each member brings a vector of predicted stars over the model's movies: a trained
member's learned profile, a folded-in member's vector, or, for a member with no ratings, the crowd's
view (each movie's Bayesian-average popularity stars). An aggregation turns the (members, movies)
matrix into one score per movie; the best ``k`` movies nobody rated or hid, and that pass the
filters, are the picks. Results carry reason codes only: the bot words them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from recommender.scoring.model import ServingModel

log = logging.getLogger(__name__)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_AGGREGATION",
    "DEFAULT_PARAMS",
    "Aggregation",
    "GroupChoice",
    "GroupMember",
    "GroupPick",
    "GroupReason",
    "GroupScorer",
    "MemberKind",
    "average",
    "average_without_misery",
    "choose_for_group",
    "confidence_prior",
    "crowd_stars",
    "least_misery",
    "mean_minus_std",
    "soft_min",
]


class MemberKind(StrEnum):
    """Where a member's predicted stars come from (the caller knows)."""

    TRAINED = "trained"
    FOLD_IN = "fold_in"
    CROWD = "crowd"  # no ratings: the crowd's view stands in for their taste


class Aggregation(StrEnum):
    AVERAGE = "average"
    LEAST_MISERY = "least_misery"
    WITHOUT_MISERY = "without_misery"  # mean, but no movie any member is predicted to dislike
    MEAN_MINUS_STD = "mean_minus_std"  # mean, penalised by how much the members disagree
    SOFT_MIN = "soft_min"  # between mean (high temperature) and min (temperature -> 0)


class GroupReason(StrEnum):
    """Why the answer looks the way it does; several may apply."""

    FLOOR_KEPT = "floor_kept"  # every pick clears the misery floor for every member
    FLOOR_RELAXED = "floor_relaxed"  # too few movies cleared the floor: it was lowered to fill k
    CROWD_VIEW = "crowd_view"  # at least one member is represented by the crowd's view
    FEWER_THAN_K = "fewer_than_k"  # fewer candidates were left than picks asked for
    NO_CANDIDATES = "no_candidates"  # everything was excluded or filtered out


@dataclass(frozen=True)
class GroupPick:
    movie_id: int
    score: float  # the aggregation's score (plus the confidence prior, if one was given)
    per_member: tuple[float, ...]  # each member's predicted stars, in the order the members came


@dataclass(frozen=True)
class GroupChoice:
    picks: tuple[GroupPick, ...]
    aggregation: Aggregation
    param: float | None  # the floor / lambda / temperature used (the floor after any relaxing)
    kinds: tuple[MemberKind, ...]
    reasons: tuple[GroupReason, ...]


@dataclass(frozen=True)
class GroupMember:
    """One member as the caller knows them: a user vector ``(factors, bias)``, or the crowd's view."""

    kind: MemberKind
    user: tuple[np.ndarray, float] | None = None

    def __post_init__(self) -> None:
        if (self.kind is MemberKind.CROWD) != (self.user is None):
            raise ValueError("a crowd member has no user vector; a trained or folded-in member needs one")


# --- aggregations: (members, movies) predicted stars -> one score per movie ---------------------


def average(stars: np.ndarray, _param: float | None = None) -> np.ndarray:
    return stars.mean(axis=0)


def least_misery(stars: np.ndarray, _param: float | None = None) -> np.ndarray:
    return stars.min(axis=0)


def average_without_misery(stars: np.ndarray, floor: float | None = 3.0) -> np.ndarray:
    """The mean, with ``-inf`` for any movie some member is predicted to rate under ``floor``."""
    floor = 3.0 if floor is None else floor
    out = stars.mean(axis=0)
    out[stars.min(axis=0) < floor] = -np.inf
    return out


def mean_minus_std(stars: np.ndarray, lam: float | None = 1.0) -> np.ndarray:
    lam = 1.0 if lam is None else lam
    return stars.mean(axis=0) - lam * stars.std(axis=0)


def soft_min(stars: np.ndarray, temperature: float | None = 0.5) -> np.ndarray:
    """``-t log mean exp(-x / t)``: the mean as ``t`` grows, the minimum as ``t`` shrinks."""
    t = 0.5 if temperature is None else temperature
    if t <= 0:
        return least_misery(stars)
    low = stars.min(axis=0)
    # Shifted by the minimum so the exponent is <= 0 and nothing overflows.
    return low - t * np.log(np.mean(np.exp(-(stars - low) / t), axis=0))


AGGREGATIONS: dict[Aggregation, Callable[[np.ndarray, float | None], np.ndarray]] = {
    Aggregation.AVERAGE: average,
    Aggregation.LEAST_MISERY: least_misery,
    Aggregation.WITHOUT_MISERY: average_without_misery,
    Aggregation.MEAN_MINUS_STD: mean_minus_std,
    Aggregation.SOFT_MIN: soft_min,
}
DEFAULT_PARAMS: dict[Aggregation, float | None] = {
    Aggregation.AVERAGE: None,
    Aggregation.LEAST_MISERY: None,
    Aggregation.WITHOUT_MISERY: 3.0,
    Aggregation.MEAN_MINUS_STD: 1.0,
    Aggregation.SOFT_MIN: 0.5,
}
# Chosen on validation groups (benchmarks/bench_groups.py; benchmarks/RESULTS.md, "Group picks").
DEFAULT_AGGREGATION: tuple[Aggregation, float | None] = (Aggregation.WITHOUT_MISERY, 3.0)


# --- choosing ----------------------------------------------------------------------------------


def _top(scores: np.ndarray, movie_ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best finite scores, best first, ties to the lower movie id."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0:
        return finite
    if finite.size > k:
        # A partition keeps only the k best (with every movie tied at the k-th score, for the id order).
        kth = np.partition(scores[finite], finite.size - k)[finite.size - k]
        finite = finite[scores[finite] >= kth]
    order = np.lexsort((movie_ids[finite], -scores[finite]))
    return finite[order[:k]]


def choose_for_group(
    stars: np.ndarray,
    movie_ids: np.ndarray,
    *,
    kinds: Sequence[MemberKind],
    exclude: Collection[int] = (),
    allowed: np.ndarray | None = None,
    k: int = 3,
    aggregation: Aggregation | str = DEFAULT_AGGREGATION[0],
    param: float | None = None,
    prior: np.ndarray | None = None,
) -> GroupChoice:
    """The top ``k`` movies for a group from each member's predicted stars.

    ``stars`` is (members, movies) aligned with ``movie_ids``; ``kinds`` says where each row came from;
    ``exclude`` holds movie ids any member rated or hid; ``allowed`` is an optional boolean mask over
    the movies (genre, decade); ``prior`` an optional per-movie bonus added to the group score (the
    served ranking's confidence prior). ``param`` defaults to the aggregation's default (for the
    default aggregation, the chosen floor). With a misery floor and fewer than ``k`` movies over it,
    the floor drops to the highest value that lets ``k`` through, and the reasons say so.
    """
    agg = Aggregation(aggregation)
    stars = np.asarray(stars)
    movie_ids = np.asarray(movie_ids)
    if stars.ndim != 2 or stars.shape[0] == 0:
        raise ValueError("stars must be a (members, movies) matrix with at least one member")
    n_members, n_movies = stars.shape
    if movie_ids.shape != (n_movies,):
        raise ValueError(f"movie_ids has shape {movie_ids.shape}; stars has {n_movies} movies")
    if len(kinds) != n_members:
        raise ValueError(f"{len(kinds)} member kinds for {n_members} members")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if not np.isfinite(stars.sum()):  # one reduction: any nan or inf makes the sum non-finite
        raise ValueError("stars must be finite")
    if param is None:
        param = DEFAULT_AGGREGATION[1] if agg is DEFAULT_AGGREGATION[0] else DEFAULT_PARAMS[agg]

    eligible = np.ones(n_movies, dtype=bool)
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (n_movies,):
            raise ValueError(f"allowed has shape {allowed.shape}; expected ({n_movies},)")
        eligible &= allowed
    if len(exclude):
        blocked = exclude if isinstance(exclude, np.ndarray) else np.fromiter(exclude, dtype=np.int64)
        eligible &= ~np.isin(movie_ids, blocked)
    if prior is not None and np.shape(prior) != (n_movies,):
        raise ValueError(f"prior has shape {np.shape(prior)}; expected ({n_movies},)")

    reasons: list[GroupReason] = []
    if MemberKind.CROWD in kinds:
        reasons.append(GroupReason.CROWD_VIEW)
    index = np.flatnonzero(eligible)
    if index.size == 0:
        return GroupChoice((), agg, param, tuple(kinds), (*reasons, GroupReason.NO_CANDIDATES))
    sub = stars.compress(eligible, axis=1)  # C order: stars[:, index] would be F order, 5x slower to reduce
    if agg is Aggregation.WITHOUT_MISERY:
        assert param is not None
        lows = sub.min(axis=0)
        need = min(k, index.size)
        if int(np.count_nonzero(lows >= param)) < need:
            # The highest floor that still lets `need` movies through: the need-th best minimum.
            param = float(np.partition(lows, lows.size - need)[lows.size - need])
            reasons.append(GroupReason.FLOOR_RELAXED)
        else:
            reasons.append(GroupReason.FLOOR_KEPT)
    scores = np.asarray(AGGREGATIONS[agg](sub, param), dtype=np.float64)
    if prior is not None:
        scores = scores + np.asarray(prior, dtype=np.float64)[index]
    top = _top(scores, movie_ids[index], k)
    if top.size < k:
        reasons.append(GroupReason.FEWER_THAN_K)
    picks = tuple(
        GroupPick(
            int(movie_ids[index[j]]),
            float(scores[j]),
            tuple(float(s) for s in sub[:, j]),
        )
        for j in top
    )
    return GroupChoice(picks, agg, None if param is None else float(param), tuple(kinds), tuple(reasons))


# --- from the serving model ---------------------------------------------------------------------


def crowd_stars(movie_ids: np.ndarray, popularity: Mapping[int, float], default: float) -> np.ndarray:
    """The crowd's view over ``movie_ids``: each movie's Bayesian-average stars, else ``default``."""
    return np.fromiter((popularity.get(int(m), default) for m in movie_ids), dtype=np.float64)


class GroupScorer:
    """Scores a whole group against one model in one matrix product.

    Build it once per model version (it keeps a float32 copy of the movie side, as the model's own
    ranking does): scoring 20 members one matvec at a time costs several times one product.
    """

    def __init__(self, model: ServingModel) -> None:
        self.model = model
        self.prior = confidence_prior(model)
        # [q_i; mu + b_i; 1] per movie, so one product [p_u, 1, b_u] @ it is the whole prediction.
        n = len(model.movie_ids)
        side = np.empty((model.dim + 2, n), dtype=np.float32)
        side[:-2] = model.item_factors.T
        side[-2] = model.global_mean + model.item_bias
        side[-1] = 1.0
        self._side = side

    def stars(self, members: Sequence[GroupMember], crowd: np.ndarray | None = None) -> np.ndarray:
        """Predicted stars of every member over every model movie, clipped: (members, movies)."""
        stacked, order = self._stacked(members, crowd)
        return stacked[np.argsort(order)]

    def _stacked(
        self, members: Sequence[GroupMember], crowd: np.ndarray | None
    ) -> tuple[np.ndarray, list[int]]:
        """The stars with the scored members' rows first, so one product writes them in place;
        ``order[row]`` is the member each row belongs to."""
        n = len(self.model.movie_ids)
        if crowd is not None and np.shape(crowd) != (n,):
            raise ValueError(f"the crowd's view has shape {np.shape(crowd)}; the model has {n} movies")
        users = [(i, m.user) for i, m in enumerate(members) if m.user is not None]
        crowds = [i for i, m in enumerate(members) if m.user is None]
        if crowds and crowd is None:
            raise ValueError("a member has the crowd's view but no crowd stars were given")
        out = np.empty((len(members), n), dtype=np.float32)
        if users:
            rows = np.ones((len(users), self.model.dim + 2), dtype=np.float32)
            for r, (_, (vec, bias)) in enumerate(users):
                rows[r, :-2] = vec
                rows[r, -1] = bias
            np.matmul(rows, self._side, out=out[: len(users)])
        if crowds:
            out[len(users) :] = crowd
        scale = self.model.scale
        np.clip(out, scale.minimum, scale.maximum, out=out)
        return out, [i for i, _ in users] + crowds

    def pick(
        self,
        members: Sequence[GroupMember],
        *,
        crowd: np.ndarray | None = None,
        exclude: Collection[int] = (),
        allowed: np.ndarray | None = None,
        k: int = 3,
        aggregation: Aggregation | str = DEFAULT_AGGREGATION[0],
        param: float | None = None,
    ) -> GroupChoice:
        """Score every member and choose, with the served ranking's confidence prior added."""
        stacked, order = self._stacked(members, crowd)
        choice = choose_for_group(
            stacked,
            self.model.movie_ids,
            kinds=[members[i].kind for i in order],
            exclude=exclude,
            allowed=allowed,
            k=k,
            aggregation=aggregation,
            param=param,
            prior=self.prior,
        )
        # Back to the caller's member order (the aggregations do not care about row order).
        back = np.argsort(order)
        picks = tuple(
            GroupPick(p.movie_id, p.score, tuple(p.per_member[j] for j in back)) for p in choice.picks
        )
        return replace(choice, picks=picks, kinds=tuple(m.kind for m in members))


def confidence_prior(model: ServingModel) -> np.ndarray:
    """The served ranking's per-movie bonus for evidence, ``rank_weight * log(1 + count)``."""
    return (model.rank_weight * np.log1p(model.item_count.astype(np.float64))).astype(np.float32)
