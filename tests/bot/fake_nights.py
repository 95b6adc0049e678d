"""The fake service's group picks and movie nights, in memory, following the real rules.

``tests/bot/test_contract.py`` runs the same movie night against this and the real service and
compares what the bot depends on: who may do what and when, the refusal codes, the host handing
over, the member cap, one open night per channel, a re-roll skipping what was shown.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from recommender.core.types import Movie
from recommender.serving.contract import (
    MAX_GROUP,
    MIN_GROUP,
    GroupMovie,
    GroupPicks,
    GroupReason,
    GroupTaste,
    InvalidGroup,
    MovieNight,
    MovieNightEnd,
    MovieNightRefused,
    MovieNightState,
    NightProblem,
    PickFilter,
    PopularityReason,
    ServingPath,
)

OPEN, PICKED, CLOSED = MovieNightState.OPEN, MovieNightState.PICKED, MovieNightState.CLOSED


@dataclass
class _Night:
    night: MovieNight
    polled_round: int = 0
    rounds: list[tuple[int, ...]] = field(default_factory=list)


class FakeGroups:
    """Mixed into ``FakeService``; uses its catalogue, ratings, hidden lists and serving paths."""

    movies: list[Movie]
    ratings_by_user: dict
    hidden_by_user: dict[int, list[int]]
    calls: list[tuple[str, object]]
    model_version: str | None
    _path: Callable[[int], tuple[ServingPath, PopularityReason | None]]  # FakeService's serving path

    @property
    def _nights(self) -> dict[int, _Night]:
        return self.__dict__.setdefault("_night_store", {})

    # -- group picks: stars 4 for a member with a taste, the crowd's 3.5 for one without ----------
    async def group_picks(
        self,
        user_ids: Sequence[int],
        k: int = 3,
        *,
        pick_filter: PickFilter | None = None,
        exclude: Collection[int] = (),
    ) -> GroupPicks:
        self.calls.append(("group_picks", (tuple(user_ids), k, pick_filter, tuple(exclude))))
        members = list(dict.fromkeys(int(u) for u in user_ids))
        if not members or len(members) > MAX_GROUP or k < 1:
            raise InvalidGroup(f"{len(members)} members, k={k}")
        blocked = set(exclude)
        for user in members:
            blocked |= set(self.ratings_by_user.get(user, {})) | set(self.hidden_by_user.get(user, []))
        tastes = tuple(GroupTaste(u, *self._group_taste(u)) for u in members)
        stars = tuple(3.5 if t.path is ServingPath.POPULARITY else 4.0 for t in tastes)
        keep = [
            m
            for m in self.movies
            if m.movie_id not in blocked and (pick_filter is None or pick_filter.matches(m))
        ][:k]
        picks = tuple(GroupMovie(m, sum(stars) / len(stars), stars) for m in keep)
        reasons = [GroupReason.FLOOR_KEPT]
        if 3.5 in stars:
            reasons.append(GroupReason.CROWD_VIEW)
        if len(picks) < k:
            reasons.append(GroupReason.FEWER_THAN_K if picks else GroupReason.NO_CANDIDATES)
        return GroupPicks(picks, tastes, tuple(reasons), 3.0, self.model_version)

    def _group_taste(self, user_id: int) -> tuple[ServingPath, int, PopularityReason | None]:
        path, why = self._path(user_id)
        return path, len(self.ratings_by_user.get(user_id, {})), why

    # -- movie nights --------------------------------------------------------------------------
    def _night_entry(self, night_id: int) -> _Night:
        found = self._nights.get(night_id)
        if found is None:
            raise MovieNightRefused(NightProblem.UNKNOWN)
        return found

    def _night_update(self, entry: _Night, **changes: object) -> MovieNight:
        entry.night = replace(entry.night, **changes)  # type: ignore[arg-type]
        rounds = entry.rounds
        picks = rounds[-1] if rounds else ()
        entry.night = replace(
            entry.night,
            picks=picks,
            shown=tuple(m for r in rounds for m in r),
            round_no=len(rounds),
            polled=bool(rounds) and entry.polled_round == len(rounds),
        )
        return entry.night

    @staticmethod
    def _night_refusal(night: MovieNight) -> MovieNightRefused:
        return MovieNightRefused(NightProblem.PICKED if night.state is PICKED else NightProblem.OVER, night)

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
        self.calls.append(("open_movie_night", (night_id, channel_id, host_id, closes_at, pick_filter)))
        for entry in self._nights.values():
            if entry.night.channel_id == channel_id and entry.night.state is OPEN:
                raise MovieNightRefused(NightProblem.ALREADY_OPEN, entry.night)
        night = MovieNight(
            night_id,
            channel_id,
            guild_id,
            host_id,
            None,
            opened_at,
            closes_at,
            pick_filter or PickFilter(),
            OPEN,
            (host_id,),
            (),
            (),
            0,
            False,
        )
        self._nights[night_id] = _Night(night)
        return night

    async def movie_night(self, night_id: int) -> MovieNight:
        return self._night_entry(night_id).night

    async def set_movie_night_message(self, night_id: int, message_id: int) -> MovieNight:
        entry = self._night_entry(night_id)
        return self._night_update(entry, message_id=message_id)

    async def join_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        self.calls.append(("join_movie_night", (night_id, user_id)))
        entry = self._night_entry(night_id)
        night = entry.night
        if night.state is not OPEN:
            raise self._night_refusal(night)
        if user_id in night.members:
            return night, False
        if len(night.members) >= MAX_GROUP:
            raise MovieNightRefused(NightProblem.FULL, night)
        return self._night_update(entry, members=(*night.members, user_id)), True

    async def leave_movie_night(self, night_id: int, user_id: int) -> tuple[MovieNight, bool]:
        self.calls.append(("leave_movie_night", (night_id, user_id)))
        entry = self._night_entry(night_id)
        night = entry.night
        if night.state is not OPEN:
            raise self._night_refusal(night)
        if user_id not in night.members:
            return night, False
        left = tuple(m for m in night.members if m != user_id)
        if not left:
            return self._night_update(entry, members=(), state=CLOSED, end=MovieNightEnd.EVERYONE_LEFT), True
        host = left[0] if night.host_id == user_id else night.host_id
        return self._night_update(entry, members=left, host_id=host), True

    async def pick_movie_night(
        self, night_id: int, by: int, *, reroll: bool = False
    ) -> tuple[MovieNight, GroupPicks]:
        self.calls.append(("pick_movie_night", (night_id, by, reroll)))
        night = self._night_entry(night_id).night
        if night.state is CLOSED:
            raise MovieNightRefused(NightProblem.OVER, night)
        if night.host_id != by:
            raise MovieNightRefused(NightProblem.NOT_HOST, night)
        if reroll and night.state is OPEN:
            raise MovieNightRefused(NightProblem.NOT_PICKED, night)
        if not reroll and night.state is PICKED:
            raise MovieNightRefused(NightProblem.PICKED, night)
        return await self._night_pick(night_id, night.shown if reroll else ())

    async def _night_pick(self, night_id: int, exclude: Collection[int]) -> tuple[MovieNight, GroupPicks]:
        entry = self._night_entry(night_id)
        if len(entry.night.members) < MIN_GROUP:
            raise MovieNightRefused(NightProblem.TOO_FEW, entry.night)
        picks = await self.group_picks(
            entry.night.members, 3, pick_filter=entry.night.filters, exclude=exclude
        )
        entry.rounds.append(tuple(p.movie.movie_id for p in picks.picks))
        return self._night_update(entry, state=PICKED), picks

    async def close_movie_night(
        self, night_id: int, *, end: MovieNightEnd | None = None
    ) -> tuple[MovieNight, GroupPicks | None]:
        self.calls.append(("close_movie_night", (night_id, end)))
        entry = self._night_entry(night_id)
        if entry.night.state is not OPEN:
            return entry.night, None
        if end is None and len(entry.night.members) >= MIN_GROUP:
            return await self._night_pick(night_id, ())
        return self._night_update(entry, state=CLOSED, end=end or MovieNightEnd.TOO_FEW), None

    async def poll_movie_night(self, night_id: int, by: int) -> tuple[MovieNight, tuple[Movie, ...]]:
        self.calls.append(("poll_movie_night", (night_id, by)))
        entry = self._night_entry(night_id)
        night = entry.night
        if night.state is CLOSED:
            raise MovieNightRefused(NightProblem.OVER, night)
        if night.host_id != by:
            raise MovieNightRefused(NightProblem.NOT_HOST, night)
        if night.state is not PICKED or len(night.picks) < 2:
            raise MovieNightRefused(NightProblem.NOT_PICKED, night)
        if night.polled:
            raise MovieNightRefused(NightProblem.POLLED, night)
        entry.polled_round = night.round_no
        night = self._night_update(entry)
        by_id = {m.movie_id: m for m in self.movies}
        return night, tuple(by_id.get(m) or Movie(m, f"movie #{m}") for m in night.picks)

    async def due_movie_nights(self, now: float) -> list[MovieNight]:
        due = [e.night for e in self._nights.values() if e.night.state is OPEN and e.night.closes_at <= now]
        return sorted(due, key=lambda n: (n.closes_at, n.night_id))
