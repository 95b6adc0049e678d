"""The service's movie nights: the rules around a group pick, over the stored night.

A mixin of :class:`recommender.serving.service.RecommenderService` (kept apart to keep files short).
Storage holds what must be atomic (one open night per channel, the member cap, the host handing
over, one round of picks at a time); this part turns its outcomes into the contract's values and
refusals, and picks with ``group_picks``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING

from recommender.core.types import Movie
from recommender.serving.catalog import Catalog
from recommender.serving.codes import PickFilter
from recommender.serving.group_contract import (
    MAX_GROUP,
    MIN_GROUP,
    GroupPicks,
    MovieNight,
    MovieNightEnd,
    MovieNightRefused,
    MovieNightState,
    NightProblem,
)

if TYPE_CHECKING:
    from recommender.persistence.storage import Storage, StoredNight

__all__ = ["PICKS_PER_NIGHT", "MovieNights", "night_from_stored"]

log = logging.getLogger(__name__)

#: Movies on a movie night's card (and in its poll).
PICKS_PER_NIGHT = 3


def night_from_stored(stored: StoredNight) -> MovieNight:
    return MovieNight(
        night_id=stored.night_id,
        channel_id=stored.channel_id,
        guild_id=stored.guild_id,
        host_id=stored.host_id,
        message_id=stored.message_id,
        opened_at=stored.opened_at,
        closes_at=stored.closes_at,
        filters=PickFilter(stored.genre, stored.year_from, stored.year_to),
        state=MovieNightState(stored.state),
        members=stored.members,
        picks=stored.picks,
        shown=stored.shown,
        round_no=stored.round_no,
        polled=stored.round_no > 0 and stored.polled_round == stored.round_no,
        end=MovieNightEnd(stored.ended) if stored.ended else None,
    )


def _known(stored: StoredNight | None) -> MovieNight:
    if stored is None:
        raise MovieNightRefused(NightProblem.UNKNOWN)
    return night_from_stored(stored)


def _not_open(night: MovieNight) -> MovieNightRefused:
    code = NightProblem.PICKED if night.state is MovieNightState.PICKED else NightProblem.OVER
    return MovieNightRefused(code, night)


class MovieNights:
    storage: Storage
    catalog: Catalog
    group_picks: Callable[..., Awaitable[GroupPicks]]

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
        f = pick_filter or PickFilter()
        stored, created = await self.storage.open_movie_night(
            night_id,
            channel_id,
            guild_id,
            host_id,
            opened_at=opened_at,
            closes_at=closes_at,
            genre=f.genre,
            year_from=f.year_from,
            year_to=f.year_to,
        )
        night = night_from_stored(stored)
        if not created:
            raise MovieNightRefused(NightProblem.ALREADY_OPEN, night)
        log.info("movie night %d opened in channel %d by %d", night_id, channel_id, host_id)
        return night

    async def movie_night(self, night_id: int) -> MovieNight:
        return _known(await self.storage.movie_night(night_id))

    async def set_movie_night_message(self, night_id: int, message_id: int) -> MovieNight:
        return _known(await self.storage.set_movie_night_message(night_id, message_id))

    async def join_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        stored, outcome = await self.storage.join_movie_night(
            night_id, user_id, limit=MAX_GROUP, joined_at=time.time()
        )
        night = _known(stored)
        if outcome == "not_open":
            raise _not_open(night)
        if outcome == "full":
            raise MovieNightRefused(NightProblem.FULL, night)
        return night, outcome == "joined"

    async def leave_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        stored, outcome = await self.storage.leave_movie_night(night_id, user_id)
        night = _known(stored)
        if outcome == "not_open":
            raise _not_open(night)
        return night, outcome == "left"

    async def pick_movie_night(
        self, night_id: int, by: int, *, reroll: bool = False
    ) -> tuple[MovieNight, GroupPicks]:
        night = await self.movie_night(night_id)
        if night.state is MovieNightState.CLOSED:
            raise MovieNightRefused(NightProblem.OVER, night)
        if night.host_id != by:
            raise MovieNightRefused(NightProblem.NOT_HOST, night)
        if reroll and night.state is MovieNightState.OPEN:
            raise MovieNightRefused(NightProblem.NOT_PICKED, night)
        if not reroll and night.state is MovieNightState.PICKED:
            raise MovieNightRefused(NightProblem.PICKED, night)
        return await self._pick(night, night.shown if reroll else ())

    async def _pick(self, night: MovieNight, exclude: Collection[int]) -> tuple[MovieNight, GroupPicks]:
        if len(night.members) < MIN_GROUP:
            raise MovieNightRefused(NightProblem.TOO_FEW, night)
        picks = await self.group_picks(
            night.members, PICKS_PER_NIGHT, pick_filter=night.filters, exclude=exclude
        )
        ids = [p.movie.movie_id for p in picks.picks]
        next_round = night.round_no + 1
        stored, recorded = await self.storage.record_movie_night_picks(night.night_id, next_round, ids)
        after = _known(stored)
        if not recorded:
            # Another pick or a close got there first (a double press, the clock): the card has it.
            raise _not_open(after)
        return after, picks

    async def close_movie_night(
        self, night_id: int, *, end: MovieNightEnd | None = None
    ) -> tuple[MovieNight, GroupPicks | None]:
        night = await self.movie_night(night_id)
        if night.state is not MovieNightState.OPEN:
            return night, None
        if end is None and len(night.members) >= MIN_GROUP:
            try:
                return await self._pick(night, ())
            except MovieNightRefused as refused:  # the host picked while we scored
                if refused.night is None or refused.code is NightProblem.TOO_FEW:
                    raise
                return refused.night, None
        stored, _ended = await self.storage.end_movie_night(night_id, (end or MovieNightEnd.TOO_FEW).value)
        return _known(stored), None

    async def poll_movie_night(self, night_id: int, by: int) -> tuple[MovieNight, tuple[Movie, ...]]:
        night = await self.movie_night(night_id)
        if night.state is MovieNightState.CLOSED:
            raise MovieNightRefused(NightProblem.OVER, night)
        if night.host_id != by:
            raise MovieNightRefused(NightProblem.NOT_HOST, night)
        if night.state is not MovieNightState.PICKED or len(night.picks) < 2:
            raise MovieNightRefused(NightProblem.NOT_PICKED, night)
        if night.polled:
            raise MovieNightRefused(NightProblem.POLLED, night)
        stored, marked = await self.storage.mark_movie_night_polled(night_id, night.round_no)
        after = _known(stored)
        if not marked:
            code = NightProblem.POLLED if after.polled else NightProblem.NOT_PICKED
            raise MovieNightRefused(code, after)
        return after, self._pick_movies(after.picks)

    def _pick_movies(self, ids: Sequence[int]) -> tuple[Movie, ...]:
        return tuple(self.catalog.get(m) or Movie(m, f"movie #{m}") for m in ids)

    async def due_movie_nights(self, now: float) -> list[MovieNight]:
        nights = []
        for night_id in await self.storage.due_movie_nights(now):
            stored = await self.storage.movie_night(night_id)
            if stored is not None:
                nights.append(night_from_stored(stored))
        return nights
