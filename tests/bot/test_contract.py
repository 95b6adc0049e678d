"""The fake the bot tests use cannot drift from the real service: both satisfy ``MovieService``
with the same signatures, and the rules the bot depends on hold for both."""

from __future__ import annotations

import inspect
import time
from typing import Protocol

import pytest

from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.persistence import storage as storage_module
from recommender.serving import contract
from recommender.serving.contract import (
    MovieNightRefused,
    MovieNightState,
    MovieService,
    NightProblem,
    PopularityReason,
    ServingPath,
    StoredRating,
)
from recommender.serving.service import RecommenderService
from tests.bot.fakes import FakeService

ALICE = 42


def _members(cls: type) -> list[str]:
    """Public methods and properties of a protocol, its protocol bases' included."""
    bases = [k for k in cls.__mro__ if getattr(k, "_is_protocol", False) and k is not Protocol]
    return list(
        dict.fromkeys(
            name
            for klass in bases
            for name, value in vars(klass).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))
        )
    )


PROTOCOL_MEMBERS = _members(MovieService)


def test_the_contract_names_every_method_the_bot_calls():
    assert set(PROTOCOL_MEMBERS) == {
        "scale",
        "model_version",
        "rate",
        "ratings",
        "forget",
        "recommend",
        "predict",
        "similar",
        "poster",
        "search",
        "resolve",
        "stats",
        "retrain",
        "last_retrain",
        "retrain_holder",
        "recover_retrain",
        "stop_training",
        "genres",
        "added_movies",
        "add_movie",
        "edit_movie",
        "remove_movie",
        "import_ratings",
        "unrate",
        "hide",
        "unhide",
        "hidden",
        "add_to_watchlist",
        "remove_from_watchlist",
        "watchlist",
        "group_picks",
        "open_movie_night",
        "movie_night",
        "set_movie_night_message",
        "join_movie_night",
        "leave_movie_night",
        "pick_movie_night",
        "close_movie_night",
        "poll_movie_night",
        "due_movie_nights",
    }


def test_fake_and_real_satisfy_the_protocol():
    assert isinstance(FakeService(), MovieService)
    real = [name for name in PROTOCOL_MEMBERS if not hasattr(RecommenderService, name)]
    assert real == []


@pytest.mark.parametrize("name", [n for n in PROTOCOL_MEMBERS if n not in {"scale", "model_version"}])
def test_every_method_has_the_same_signature_in_fake_real_and_protocol(name):
    protocol = inspect.signature(getattr(MovieService, name), eval_str=True)
    real = inspect.signature(getattr(RecommenderService, name), eval_str=True)
    fake = inspect.signature(getattr(FakeService, name), eval_str=True)
    assert real == protocol, f"RecommenderService.{name}{real} != MovieService.{name}{protocol}"
    assert fake == protocol, f"FakeService.{name}{fake} != MovieService.{name}{protocol}"
    assert inspect.iscoroutinefunction(getattr(FakeService, name)) == inspect.iscoroutinefunction(
        getattr(RecommenderService, name)
    )


def test_one_stored_rating_type():
    assert contract.StoredRating is storage_module.StoredRating
    import tests.bot.fakes as fakes

    assert fakes.StoredRating is storage_module.StoredRating


# ------------------------------------------------------------------- rules the fake follows


def test_fake_resolve_of_digits_that_are_no_id_tries_them_as_a_title():
    fake = FakeService(movies=[Movie(1, "Heat", 1995), Movie(2, "1917", 2019)])
    assert fake.resolve("1917").movie_id == 2  # not an id: a title
    with pytest.raises(UnknownMovie) as info:
        fake.resolve("424242")
    assert info.value.query == "424242"


async def test_fake_ratings_keep_a_movie_gone_from_the_catalogue():
    fake = FakeService()
    await fake.rate(ALICE, 1, 4.0)
    fake.movies = [m for m in fake.movies if m.movie_id != 1]
    [(movie, rating)] = await fake.ratings(ALICE)
    assert (movie.movie_id, movie.title, rating.stars) == (1, "movie #1", 4.0)
    assert isinstance(rating, StoredRating)


async def test_fake_similar_and_predict_raise_for_an_unknown_movie():
    fake = FakeService()
    for call in (fake.similar(424_242), fake.predict(ALICE, 424_242)):
        with pytest.raises(UnknownMovie):
            await call


async def test_fake_predict_fills_the_members_own_stars():
    fake = FakeService()
    await fake.rate(ALICE, 3, 4.5)
    assert (await fake.predict(ALICE, 3)).rated == 4.5
    assert (await fake.predict(ALICE, 4)).rated is None


async def test_fake_trained_member_means_the_last_training_saw_their_ratings():
    fake = FakeService()
    assert (await fake.recommend(ALICE)).popularity_reason is PopularityReason.NO_RATINGS
    await fake.rate(ALICE, 1, 4.0)
    assert (await fake.recommend(ALICE)).popularity_reason is PopularityReason.NO_MODEL
    fake.model_version, fake.trained_at = "v1", time.time() + 60  # trained later, but not on ALICE
    assert (await fake.recommend(ALICE)).path is ServingPath.FOLD_IN
    fake.mark_trained("v2")
    assert (await fake.recommend(ALICE)).path is ServingPath.TRAINED
    await fake.rate(ALICE, 2, 3.0)  # newer than the training
    assert (await fake.recommend(ALICE)).path is ServingPath.FOLD_IN


# ------------------------------------------------------ movie nights: the same rules in both

HOST, ANN, BEN = 501, 502, 503


async def _night_trace(service: MovieService) -> list[object]:
    """One movie night through every rule the bot relies on; what each step gave back."""
    trace: list[object] = []

    async def step(call) -> object:  # type: ignore[no-untyped-def]
        try:
            result = await call
        except MovieNightRefused as refused:
            return ("refused", refused.code, refused.night.state if refused.night else None)
        night = result[0] if isinstance(result, tuple) else result
        return (night.state, night.host_id, night.members, len(night.picks), night.polled)

    await service.rate(ANN, 1, 4.0)
    await service.hide(BEN, 2)
    trace.append(await step(service.open_movie_night(7, 70, 1, HOST, opened_at=0.0, closes_at=60.0)))
    trace.append(await step(service.open_movie_night(8, 70, 1, ANN, opened_at=0.0, closes_at=60.0)))
    trace.append(await step(service.pick_movie_night(7, HOST)))  # only the host in
    for user in (ANN, ANN, BEN):
        trace.append(await step(service.join_movie_night(7, user)))
    trace.append(await step(service.leave_movie_night(7, 999)))
    trace.append(await step(service.leave_movie_night(7, HOST)))  # Ann hosts now
    trace.append(await step(service.pick_movie_night(7, HOST)))
    trace.append(await step(service.poll_movie_night(7, ANN)))
    trace.append(await step(service.pick_movie_night(7, ANN, reroll=True)))
    night, picks = await service.pick_movie_night(7, ANN)
    trace.append(sorted({1, 2} & {p.movie.movie_id for p in picks.picks}))  # rated, hidden: never
    trace.append(await step(service.pick_movie_night(7, ANN)))
    trace.append(await step(service.join_movie_night(7, HOST)))
    night, again = await service.pick_movie_night(7, ANN, reroll=True)
    trace.append(sorted(set(night.shown[:3]) & {p.movie.movie_id for p in again.picks}))
    trace.append(await step(service.poll_movie_night(7, ANN)))
    trace.append(await step(service.poll_movie_night(7, ANN)))
    trace.append(await step(service.open_movie_night(9, 71, 1, BEN, opened_at=0.0, closes_at=60.0)))
    trace.append([n.night_id for n in await service.due_movie_nights(60.0)])
    trace.append(await step(service.close_movie_night(9)))
    trace.append(await step(service.join_movie_night(9, ANN)))
    trace.append(await step(service.movie_night(404)))
    return trace


async def test_fake_and_real_movie_nights_follow_the_same_rules(tmp_path):
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import Storage
    from recommender.serving.catalog import Catalog
    from tests.recommender.serving.service_fakes import HALF, movies, popularity

    async with Storage(tmp_path / "bot.sqlite3") as storage:
        await storage.load_catalog("ml-latest-small", movies(), popularity())
        real = RecommenderService(
            storage, Catalog(movies()), Registry(tmp_path / "models"), HALF, popularity=popularity()
        )
        real_trace = await _night_trace(real)
        await real.close()
    fake_trace = await _night_trace(FakeService())
    assert fake_trace == real_trace
    closed, picked, opened = MovieNightState.CLOSED, MovieNightState.PICKED, MovieNightState.OPEN
    assert real_trace == [
        (opened, HOST, (HOST,), 0, False),
        ("refused", NightProblem.ALREADY_OPEN, opened),
        ("refused", NightProblem.TOO_FEW, opened),
        (opened, HOST, (HOST, ANN), 0, False),
        (opened, HOST, (HOST, ANN), 0, False),
        (opened, HOST, (HOST, ANN, BEN), 0, False),
        (opened, HOST, (HOST, ANN, BEN), 0, False),
        (opened, ANN, (ANN, BEN), 0, False),
        ("refused", NightProblem.NOT_HOST, opened),
        ("refused", NightProblem.NOT_PICKED, opened),
        ("refused", NightProblem.NOT_PICKED, opened),
        [],
        ("refused", NightProblem.PICKED, picked),
        ("refused", NightProblem.PICKED, picked),
        [],
        (picked, ANN, (ANN, BEN), 3, True),
        ("refused", NightProblem.POLLED, picked),
        (opened, BEN, (BEN,), 0, False),
        [9],
        (closed, BEN, (BEN,), 0, False),
        ("refused", NightProblem.OVER, closed),
        ("refused", NightProblem.UNKNOWN, None),
    ]
