"""The service's movie nights over real storage and a real ServingModel: who may do what, and when;
the picks never hold a movie a member rated or hid; a re-roll skips what was shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.persistence.registry import Registry
from recommender.serving.contract import (
    MAX_GROUP,
    MovieNightEnd,
    MovieNightRefused,
    MovieNightState,
    NightProblem,
    PickFilter,
)
from recommender.serving.service import RecommenderService

from .service_fakes import CLUSTER_A, CLUSTER_B, make_model, publish
from .test_group_service import LONG_AGO, make_service, open_storage

HOST, ANN, BEN = 5_001, 5_002, 5_003
CHANNEL, GUILD, NIGHT = 9_001, 8_001, 1_300_000_000_000_000_001


@pytest.fixture
async def service(tmp_path: Path):
    storage = await open_storage(tmp_path / "bot.sqlite3")
    registry = Registry(tmp_path / "models")
    publish(registry, make_model("v1", trained_members={HOST: CLUSTER_A, ANN: CLUSTER_B}))
    await storage.upsert_rating(HOST, CLUSTER_A[0], 5.0, None, rated_at=LONG_AGO)
    await storage.upsert_rating(ANN, CLUSTER_B[0], 5.0, None, rated_at=LONG_AGO)
    yield make_service(storage, registry)
    await storage.close()


async def open_night(service: RecommenderService, night_id: int = NIGHT, **options):
    return await service.open_movie_night(
        night_id, CHANNEL, GUILD, HOST, opened_at=1_000.0, closes_at=4_600.0, **options
    )


async def refused(call) -> MovieNightRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(MovieNightRefused) as info:
        await call
    return info.value


async def test_open_one_per_channel_with_the_host_in(service: RecommenderService) -> None:
    night = await open_night(service, pick_filter=PickFilter("Comedy", 1990, 1999))
    assert (night.state, night.members, night.host_id) == (MovieNightState.OPEN, (HOST,), HOST)
    assert night.filters == PickFilter("Comedy", 1990, 1999)
    error = await refused(open_night(service, NIGHT + 1))
    assert error.code is NightProblem.ALREADY_OPEN and error.night == night
    placed = await service.set_movie_night_message(NIGHT, 77)
    assert placed.message_id == 77 and await service.movie_night(NIGHT) == placed
    assert (await refused(service.movie_night(12345))).code is NightProblem.UNKNOWN


async def test_joining_and_leaving(service: RecommenderService) -> None:
    await open_night(service)
    night, new = await service.join_movie_night(NIGHT, ANN)
    assert new and night.members == (HOST, ANN)
    night, new = await service.join_movie_night(NIGHT, ANN)
    assert not new and night.members == (HOST, ANN)
    night, was_in = await service.leave_movie_night(NIGHT, BEN)
    assert not was_in
    for user in range(1, MAX_GROUP - 1):
        await service.join_movie_night(NIGHT, user)
    error = await refused(service.join_movie_night(NIGHT, BEN))
    assert error.code is NightProblem.FULL and len(error.night.members) == MAX_GROUP
    assert (await refused(service.join_movie_night(424242, BEN))).code is NightProblem.UNKNOWN


async def test_the_host_leaving_hands_over_and_everyone_leaving_ends_it(service: RecommenderService) -> None:
    await open_night(service)
    await service.join_movie_night(NIGHT, ANN)
    await service.join_movie_night(NIGHT, BEN)
    night, _ = await service.leave_movie_night(NIGHT, HOST)
    assert (night.host_id, night.members) == (ANN, (ANN, BEN))
    assert (await refused(service.pick_movie_night(NIGHT, HOST))).code is NightProblem.NOT_HOST
    await service.leave_movie_night(NIGHT, ANN)
    night, _ = await service.leave_movie_night(NIGHT, BEN)
    assert (night.state, night.end) == (MovieNightState.CLOSED, MovieNightEnd.EVERYONE_LEFT)
    assert (await refused(service.join_movie_night(NIGHT, ANN))).code is NightProblem.OVER
    assert (await refused(service.pick_movie_night(NIGHT, BEN))).code is NightProblem.OVER
    await open_night(service, NIGHT + 1)  # the channel is free again


async def test_pick_by_the_host_only_with_two_members(service: RecommenderService) -> None:
    await open_night(service)
    assert (await refused(service.pick_movie_night(NIGHT, HOST))).code is NightProblem.TOO_FEW
    await service.join_movie_night(NIGHT, ANN)
    assert (await refused(service.pick_movie_night(NIGHT, ANN))).code is NightProblem.NOT_HOST
    assert (await refused(service.pick_movie_night(NIGHT, HOST, reroll=True))).code is NightProblem.NOT_PICKED
    await service.hide(ANN, CLUSTER_A[1])
    night, picks = await service.pick_movie_night(NIGHT, HOST)
    shown = [p.movie.movie_id for p in picks.picks]
    assert len(shown) == 3 and night.picks == tuple(shown) and night.state is MovieNightState.PICKED
    assert not {CLUSTER_A[0], CLUSTER_B[0], CLUSTER_A[1]} & set(shown)  # rated or hidden by a member
    assert [t.user_id for t in picks.members] == [HOST, ANN]
    assert (await refused(service.pick_movie_night(NIGHT, HOST))).code is NightProblem.PICKED
    assert (await refused(service.join_movie_night(NIGHT, BEN))).code is NightProblem.PICKED
    assert (await refused(service.leave_movie_night(NIGHT, ANN))).code is NightProblem.PICKED

    night, again = await service.pick_movie_night(NIGHT, HOST, reroll=True)
    rerolled = [p.movie.movie_id for p in again.picks]
    assert len(rerolled) == 3 and not set(rerolled) & set(shown)
    assert night.shown == (*shown, *rerolled) and night.round_no == 2


async def test_the_pick_respects_the_nights_filters(service: RecommenderService) -> None:
    await open_night(service, pick_filter=PickFilter("Comedy"))
    await service.join_movie_night(NIGHT, ANN)
    _night, picks = await service.pick_movie_night(NIGHT, HOST)
    assert picks.picks and all("Comedy" in p.movie.genres for p in picks.picks)


async def test_closing_at_its_time(service: RecommenderService) -> None:
    await open_night(service)  # closes at 4,600
    assert await service.due_movie_nights(4_599.0) == []
    [due] = await service.due_movie_nights(4_600.0)
    night, picks = await service.close_movie_night(due.night_id)
    assert picks is None and (night.state, night.end) == (MovieNightState.CLOSED, MovieNightEnd.TOO_FEW)
    assert await service.close_movie_night(NIGHT) == (night, None)  # already over: as it is

    await open_night(service, NIGHT + 1)
    await service.join_movie_night(NIGHT + 1, ANN)
    night, picks = await service.close_movie_night(NIGHT + 1)
    assert picks is not None and len(picks.picks) == 3 and night.state is MovieNightState.PICKED
    assert await service.close_movie_night(NIGHT + 1) == (night, None)  # picked: left alone

    await service.open_movie_night(NIGHT + 2, CHANNEL + 1, GUILD, BEN, opened_at=0.0, closes_at=1.0)
    await service.join_movie_night(NIGHT + 2, ANN)
    night, picks = await service.close_movie_night(NIGHT + 2, end=MovieNightEnd.NOT_POSTED)
    assert picks is None and night.end is MovieNightEnd.NOT_POSTED


async def test_a_poll_per_round_of_picks_by_the_host(service: RecommenderService) -> None:
    await open_night(service)
    await service.join_movie_night(NIGHT, ANN)
    assert (await refused(service.poll_movie_night(NIGHT, HOST))).code is NightProblem.NOT_PICKED
    night, picks = await service.pick_movie_night(NIGHT, HOST)
    assert (await refused(service.poll_movie_night(NIGHT, ANN))).code is NightProblem.NOT_HOST
    night, movies = await service.poll_movie_night(NIGHT, HOST)
    assert night.polled and movies == tuple(p.movie for p in picks.picks)
    assert (await refused(service.poll_movie_night(NIGHT, HOST))).code is NightProblem.POLLED
    night, _ = await service.pick_movie_night(NIGHT, HOST, reroll=True)
    assert not night.polled
    assert (await service.poll_movie_night(NIGHT, HOST))[0].polled
