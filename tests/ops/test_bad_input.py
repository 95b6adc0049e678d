"""Hostile input through discord.py's real interaction handling, against the real service and database.

Discord validates options against the synced schema (length, range, finiteness) and simcord does the
same; a stale schema (the dataset changed), a forged client or a Discord bug can still deliver
anything, so most properties switch simcord's option validation off and send the raw value.
Every answer must be one clear private message, no error may reach the bot's "bug" path, and the
database must be byte-for-byte unchanged.
"""

from __future__ import annotations

import math

import pytest
import simcord.interactions
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.errors import describe_error
from bot.ui.transformers import MovieTransformer
from recommender.core.errors import UnknownMovie
from tests.ops.realbot import World, all_text, dump, is_private, real_service, running, settings_for

SQL = ["'; DROP TABLE ratings; --", '" OR 1=1 --', "%", "_", "\\", "Robert'); DELETE FROM movies;--"]
hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Cs"]), max_size=50),
    st.sampled_from(SQL),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: f"id:{n}"),
    st.integers(min_value=1700, max_value=10**18).map(lambda n: f"id:{n}"),  # ids that don't exist
    st.integers(min_value=0, max_value=10**40).map(str),
)
bad_stars = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 5.5, 4.3, 1e308, -0.0, 0.49999]),
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: not (0.5 <= x <= 5 and (x * 2).is_integer())
    ),
)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    # One bot, service and simcord env serve every example of a test (each example must leave the
    # database unchanged anyway, which is what is checked).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def lenient_discord(monkeypatch):
    """Let any option value through, as a stale command schema or a forged client would."""
    monkeypatch.setattr(simcord.interactions, "validate_option_value", lambda _cmd, _opt, value: value)


@pytest.fixture
async def world(data_dir):
    async with real_service(data_dir) as service, running(service, settings_for(data_dir)) as world:
        world.before = dump(data_dir / "bot.sqlite3")  # type: ignore[attr-defined]
        world.db = data_dir / "bot.sqlite3"  # type: ignore[attr-defined]
        yield world


def start_example(world: World) -> None:
    world.env.bot.cooldowns.reset()  # rate limits are tested elsewhere; here they would hide inputs
    world.env.errors  # noqa: B018 - reading acknowledges the previous example's handled errors


def finish_example(world: World) -> None:
    for error in world.env.errors:
        _message, outcome, expected = describe_error(error)
        assert expected, f"a bad input reached the bug path: {outcome} {error!r}"
    assert dump(world.db) == world.before  # type: ignore[attr-defined]


@PROPERTY
@given(movie=hostile_text, stars=bad_stars)
async def test_rate_with_bad_stars_is_refused_privately(world, lenient_discord, movie, stars):
    start_example(world)
    result = await world.alice.slash(world.channel, "rate", movie=movie, stars=stars)
    assert is_private(result)
    text = all_text(result)
    assert text and not text.startswith("Saved")
    assert len(text) < 2000 and "Traceback" not in text
    finish_example(world)


@PROPERTY
@given(movie=hostile_text, stars=st.sampled_from([1.0, 3.0, 5.0]))
async def test_rate_of_a_movie_that_does_not_resolve_says_so(world, lenient_discord, movie, stars):
    try:
        MovieTransformer.resolve_now(world.env.bot.service, movie)
        assume(False)  # a real title: a legitimate rating, not what this property is about
    except UnknownMovie:
        pass
    start_example(world)
    result = await world.alice.slash(world.channel, "rate", movie=movie, stars=stars)
    assert is_private(result)
    text = all_text(result)
    assert "couldn't find" in text, text
    finish_example(world)


@PROPERTY
@given(command=st.sampled_from(["predict", "similar"]), movie=hostile_text)
async def test_predict_and_similar_answer_or_explain_and_never_write(world, lenient_discord, command, movie):
    start_example(world)
    result = await world.alice.slash(world.channel, command, movie=movie)
    text = all_text(result)
    # Either an answer embed, or exactly one private explanation.
    if result.response is None or not result.response.embeds:
        assert is_private(result) and text, text
    assert "Traceback" not in text
    finish_example(world)


@PROPERTY
@given(page=st.integers(min_value=-(2**53), max_value=2**53))
async def test_ratings_page_out_of_range_is_explained(world, lenient_discord, page):
    start_example(world)
    result = await world.alice.slash(world.channel, "ratings", page=page)
    assert is_private(result)
    if page != 1:
        assert "Pages start at 1" in all_text(result) or "only have 1 page" in all_text(result)
    finish_example(world)


@PROPERTY
@given(typed=hostile_text)
async def test_autocomplete_never_fails_and_respects_discord_limits(world, typed):
    start_example(world)
    # Discord caps what a member can type at the option's max length (200).
    choices = await world.alice.autocomplete(world.channel, "rate", "movie", typed[:200])
    assert len(choices) <= 25
    assert all(1 <= len(c["name"]) <= 100 and c["value"].startswith("id:") for c in choices)
    assert len({c["value"] for c in choices}) == len(choices)
    assert world.env.bot.interaction_stats.autocomplete["failed"] == 0
    finish_example(world)
