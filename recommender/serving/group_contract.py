"""The contract's part for groups: one pick for several members, and the movie night around it.

``GroupService`` is a base of :class:`recommender.serving.contract.MovieService` (kept apart to keep
files short); the values are codes and numbers, as everywhere in the contract: ``bot/`` words them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from recommender.core.errors import RecommenderError
from recommender.core.types import Movie
from recommender.serving.codes import PickFilter, PopularityReason, ServingPath
from recommender.serving.groups import GroupReason

__all__ = [
    "MAX_GROUP",
    "MIN_GROUP",
    "GroupMovie",
    "GroupPicks",
    "GroupReason",
    "GroupService",
    "GroupTaste",
    "InvalidGroup",
    "MovieNight",
    "MovieNightEnd",
    "MovieNightRefused",
    "MovieNightState",
    "NightProblem",
]

#: Members one group pick (and one movie night) takes: a pick for one is /recommend; twenty is what
#: the latency target is measured for.
MIN_GROUP, MAX_GROUP = 2, 20


@dataclass(frozen=True, slots=True)
class GroupTaste:
    """How one member of a group was served: the same paths as ``/recommend``."""

    user_id: int
    path: ServingPath  # TRAINED, FOLD_IN, or POPULARITY: counted with the crowd's view
    n_ratings: int
    popularity_reason: PopularityReason | None = None


@dataclass(frozen=True, slots=True)
class GroupMovie:
    movie: Movie
    score: float  # the group's ranking score, not stars
    stars: tuple[float, ...]  # each member's predicted stars, in ``GroupPicks.members``' order


@dataclass(frozen=True, slots=True)
class GroupPicks:
    picks: tuple[GroupMovie, ...]
    members: tuple[GroupTaste, ...]
    reasons: tuple[GroupReason, ...]
    #: the misery floor the picks clear for every member (lower than the default when relaxed)
    floor: float | None
    model_version: str | None


class InvalidGroup(RecommenderError):
    """A group pick asked for no member, more than ``MAX_GROUP``, or fewer than one movie."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"I can't pick for that group: {detail}.")


class MovieNightState(StrEnum):
    OPEN = "open"  # members join and leave; the host may pick
    PICKED = "picked"  # picks are on the card; the host may re-roll or open a poll
    CLOSED = "closed"  # over without picks: ``MovieNight.end`` says why


class MovieNightEnd(StrEnum):
    EVERYONE_LEFT = "everyone_left"  # the last member left before a pick
    TOO_FEW = "too_few"  # its time came with fewer than MIN_GROUP members
    NOT_POSTED = "not_posted"  # its card could not be posted


@dataclass(frozen=True, slots=True)
class MovieNight:
    night_id: int
    channel_id: int
    guild_id: int | None
    host_id: int
    message_id: int | None  # the card, once posted
    opened_at: float
    closes_at: float
    filters: PickFilter
    state: MovieNightState
    members: tuple[int, ...]  # earliest joined first; the host is one of them
    picks: tuple[int, ...]  # the movies on the card now, best first
    shown: tuple[int, ...]  # every movie shown so far (a re-roll skips them)
    round_no: int  # rounds of picks so far
    polled: bool  # the picks on the card have a poll
    end: MovieNightEnd | None = None


class NightProblem(StrEnum):
    """Why a movie night refused a request (the bot words each)."""

    ALREADY_OPEN = "already_open"  # the channel has an open night: ``MovieNightRefused.night``
    UNKNOWN = "unknown"  # no such night (its database was replaced)
    PICKED = "picked"  # joining, leaving or picking once the picks are out
    OVER = "over"  # the night closed without picks
    NOT_HOST = "not_host"  # only the host picks, re-rolls and opens the poll
    FULL = "full"  # MAX_GROUP members are in
    TOO_FEW = "too_few"  # a pick needs MIN_GROUP members
    NOT_PICKED = "not_picked"  # a re-roll or poll before any pick (or a poll of fewer than two)
    POLLED = "polled"  # these picks have a poll already


class MovieNightRefused(RecommenderError):
    """A movie night request that changes nothing; ``code`` says why, ``night`` is the night as it
    is now (for ALREADY_OPEN: the channel's open one; None for UNKNOWN)."""

    def __init__(self, code: NightProblem, night: MovieNight | None = None) -> None:
        self.code = code
        self.night = night
        super().__init__("That movie night can't do that right now.")


class GroupService(Protocol):
    """Group picks and movie nights. Times are unix seconds from the bot's clock."""

    async def group_picks(
        self,
        user_ids: Sequence[int],
        k: int = 3,
        *,
        pick_filter: PickFilter | None = None,
        exclude: Collection[int] = (),
    ) -> GroupPicks:
        """Up to ``k`` movies for the group, none that any member rated or hid nor in ``exclude``,
        each member served by the same path as ``/recommend``; ranked so that nobody is likely to
        dislike a pick. Raises ``InvalidGroup``."""
        ...

    async def open_movie_night(
        self,
        night_id: int,
        channel_id: int,
        guild_id: int | None,
        host_id: int,
        *,
        opened_at: float,
        closes_at: float,
        pick_filter: PickFilter | None = None,
    ) -> MovieNight:
        """Open a night with the host as its first member; ``night_id`` is unique (the bot passes
        the command's interaction id). Raises ``MovieNightRefused(ALREADY_OPEN)`` with the
        channel's open night."""
        ...

    async def movie_night(self, night_id: int) -> MovieNight:
        """The night as stored. Raises ``MovieNightRefused(UNKNOWN)``."""
        ...

    async def set_movie_night_message(self, night_id: int, message_id: int) -> MovieNight:
        """Where its card is. Raises ``MovieNightRefused(UNKNOWN)``."""
        ...

    async def join_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        """Add the member (only themself); False when they were in already. Raises
        ``MovieNightRefused`` (UNKNOWN, PICKED, OVER, FULL)."""
        ...

    async def leave_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        """Take the member out; False when they were not in. A leaving host hands the night to the
        earliest joined member left; the last one out closes it (EVERYONE_LEFT). Raises
        ``MovieNightRefused`` (UNKNOWN, PICKED, OVER)."""
        ...

    async def pick_movie_night(
        self, night_id: int, by: int, *, reroll: bool = False
    ) -> tuple[MovieNight, GroupPicks]:
        """The host's Pick (or Re-roll: the next picks, skipping every movie shown). Raises
        ``MovieNightRefused`` (UNKNOWN, NOT_HOST, TOO_FEW, PICKED for a second Pick, NOT_PICKED
        for a Re-roll first, OVER)."""
        ...

    async def close_movie_night(
        self, night_id: int, *, end: MovieNightEnd | None = None
    ) -> tuple[MovieNight, GroupPicks | None]:
        """Its time came: with MIN_GROUP members its picks, as the host's Pick would give; with
        fewer, closed (TOO_FEW). ``end`` closes it without picks. A night no longer open comes
        back as it is, with None. Raises ``MovieNightRefused(UNKNOWN)``."""
        ...

    async def poll_movie_night(self, night_id: int, by: int) -> tuple[MovieNight, tuple[Movie, ...]]:
        """Mark the picks on the card as polled and return their movies. Raises
        ``MovieNightRefused`` (UNKNOWN, NOT_HOST, NOT_PICKED, POLLED, OVER)."""
        ...

    async def due_movie_nights(self, now: float) -> list[MovieNight]:
        """Open nights whose closing time is at or before ``now``, soonest first."""
        ...
