"""Member commands driven through discord.py's real interaction handling (simcord), over a fake service."""

from __future__ import annotations

import json
import logging

import pytest

from bot.ui.transformers import MAX_CHOICES, MAX_NAME
from tests.bot.fakes import MOVIES


def last_callback_type(env) -> int:
    """The interaction response type the bot sent last (4 = message, 5 = deferred "thinking…")."""
    return next(r.json["type"] for r in reversed(env.http_requests) if r.path.endswith("/callback"))


def handled_errors(env) -> list[str]:
    """Names of the errors the bot handled; reading ``env.errors`` also tells simcord they were expected."""
    from bot.errors import unwrap

    return [type(unwrap(e)).__name__ for e in env.errors]


async def test_autocomplete_offers_at_most_25_short_choices_with_movie_ids(simcord_env, world):
    choices = await world.member.autocomplete(world.channel, "rate", "movie", "filler")
    assert len(choices) == MAX_CHOICES  # 40 movies match; Discord accepts at most 25
    assert all(c["value"].startswith("id:") and c["value"][3:].isdigit() for c in choices)
    by_id = {f"id:{m.movie_id}": m for m in MOVIES}
    assert [by_id[c["value"]].display for c in choices] == [c["name"] for c in choices]

    long = await world.member.autocomplete(world.channel, "predict", "movie", "aaaa")
    assert len(long) == 1 and long[0]["value"] == "id:9"
    assert len(long[0]["name"]) <= MAX_NAME and long[0]["name"].endswith("… (2001)")  # the year stays


async def test_autocomplete_survives_a_failing_search(simcord_env, world, fake_service):
    fake_service.search_error = RuntimeError("index exploded")
    result = await world.member.autocomplete(world.channel, "rate", "movie", "toy")
    # An empty answer, not a dropped interaction (discord.py would swallow the exception and never reply).
    assert result == []
    assert simcord_env.http_requests[-1].json == {"type": 8, "data": {"choices": []}}


async def test_rate_confirms_title_year_and_stars_then_updates(simcord_env, world, fake_service):
    first = await world.member.slash(world.channel, "rate", movie="id:1", stars=4.5)
    assert first.ephemeral
    assert "Toy Story (1995)" in first.response.content and "4.5★" in first.response.content
    assert "updated" not in first.response.content
    assert ("rate", (world.member.id, 1, 4.5, world.guild.id)) in fake_service.calls

    again = await world.member.slash(world.channel, "rate", movie="Toy Story", stars=3.0)
    assert "3.0★" in again.response.content and "updated from 4.5★" in again.response.content
    assert fake_service.ratings_by_user[world.member.id][1].stars == 3.0


async def test_rate_rejects_stars_off_the_step_with_one_private_message(
    simcord_env, world, fake_service, lenient_discord
):
    # Discord offers only the scale's values; a stale schema or a forged payload may send others.
    result = await world.member.slash(world.channel, "rate", movie="id:1", stars=4.3)
    assert result.ephemeral
    assert "0.5 to 5 in half stars" in result.response.content
    assert world.member.id not in fake_service.ratings_by_user
    assert handled_errors(simcord_env) == ["InvalidStars"]


async def test_stars_option_carries_the_dataset_scale(simcord_env, world):
    synced = next(r for r in simcord_env.http_requests if r.method == "PUT" and r.path.endswith("/commands"))
    rate = next(c for c in synced.json if c["name"] == "rate")
    stars = next(o for o in rate["options"] if o["name"] == "stars")
    values = [c["value"] for c in stars["choices"]]
    assert values == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert [c["name"] for c in stars["choices"]][-2:] == ["4.5★", "5★"]


@pytest.fixture
def whole_star_settings(tmp_path):
    from recommender.core.config import Settings

    return Settings(data_dir=tmp_path, movielens_dataset="ml-100k")


async def test_stars_option_follows_a_whole_star_dataset(whole_star_settings, fake_service, lenient_discord):
    import simcord

    from bot.client import create_bot
    from recommender.core.types import DATASETS

    fake_service.scale = DATASETS["ml-100k"].scale
    async with simcord.run(create_bot(whole_star_settings, fake_service)) as env:
        channel = env.create_guild().create_text_channel("general")
        alice = env.guild.add_member(env.create_user("alice"))
        synced = next(r for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands"))
        rate = next(c for c in synced.json if c["name"] == "rate")
        stars = next(o for o in rate["options"] if o["name"] == "stars")
        assert [c["value"] for c in stars["choices"]] == [1.0, 2.0, 3.0, 4.0, 5.0]
        result = await alice.slash(channel, "rate", movie="id:2", stars=3.5)
        assert "1 to 5 in whole stars" in result.response.content
        assert handled_errors(env) == ["InvalidStars"]


async def test_unknown_movie_gets_did_you_mean_suggestions(simcord_env, world, fake_service):
    result = await world.member.slash(world.channel, "rate", movie="Toy Stroy", stars=4.0)
    assert result.ephemeral
    text = result.response.content
    assert "couldn't find" in text and "Did you mean" in text and "Toy Story (1995)" in text
    assert not fake_service.ratings_by_user
    assert handled_errors(simcord_env) == ["UnknownMovie"]


async def test_rate_cooldown_is_per_member_and_says_when(simcord_env, world):
    for i in range(10):
        ok = await world.member.slash(world.channel, "rate", movie=f"id:{100 + i}", stars=3.0)
        assert "Saved" in ok.response.content
    limited = await world.member.slash(world.channel, "rate", movie="id:1", stars=3.0)
    assert limited.ephemeral
    assert "try again in" in limited.response.content and " s." in limited.response.content
    # Another member is not slowed down by alice.
    other = await world.other.slash(world.channel, "rate", movie="id:1", stars=3.0)
    assert "Saved" in other.response.content
    assert handled_errors(simcord_env) == ["CommandOnCooldown"]


async def test_recommend_shows_five_unrated_picks_and_the_path(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:2", stars=5.0)
    result = await world.member.slash(world.channel, "recommend")
    assert last_callback_type(simcord_env) == 5 and not result.ephemeral  # deferred first, then answered
    embed = result.response.embeds[0]
    assert len(embed.fields) == 5
    assert all("★" in f.name and f.value for f in embed.fields)
    assert not any("Jumanji" in f.name for f in embed.fields)  # rated, so never recommended
    assert "popular" in embed.footer.text  # the fake has no model: the popularity path served it

    fake_service.model_version, fake_service.trained_at = "v7", 0.0
    again = await world.member.slash(world.channel, "recommend")
    # Served from the member's newest ratings, said in plain words: no version ids, no model jargon.
    footer = again.response.embeds[0].footer.text
    assert "including your newest ones" in footer
    assert "v7" not in footer and "model" not in footer


async def test_recommend_cooldown(simcord_env, world):
    for _ in range(3):
        await world.member.slash(world.channel, "recommend")
    limited = await world.member.slash(world.channel, "recommend")
    assert limited.ephemeral and "try again in" in limited.response.content
    assert handled_errors(simcord_env) == ["CommandOnCooldown"]


async def test_predict_and_similar(simcord_env, world, fake_service):
    predicted = await world.member.slash(world.channel, "predict", movie="id:8")
    embed = predicted.response.embeds[0]
    assert embed.title == "The Matrix (1999)" and "3.5★" in embed.description
    assert "Served by" in embed.footer.text
    assert ("predict", (world.member.id, 8)) in fake_service.calls

    similar = await world.member.slash(world.channel, "similar", movie="Heat")
    embed = similar.response.embeds[0]
    assert "Heat (1995)" in embed.title and len(embed.fields) == 5
    assert ("similar", 3) in fake_service.calls


async def test_ratings_are_private_and_paged(simcord_env, world, fake_service):
    empty = await world.member.slash(world.channel, "ratings")
    assert empty.ephemeral and "No ratings yet" in empty.response.embeds[0].description

    for i in range(10):
        await world.member.slash(world.channel, "rate", movie=f"id:{100 + i}", stars=4.0)
    simcord_env.bot.cooldowns.reset()
    for i in range(10, 12):
        await world.member.slash(world.channel, "rate", movie=f"id:{100 + i}", stars=2.5)

    page1 = await world.member.slash(world.channel, "ratings")
    assert page1.ephemeral
    assert page1.response.embeds[0].description.count("\n") == 9  # ten lines
    assert "Page 1 of 2" in page1.response.embeds[0].footer.text
    page2 = await world.member.slash(world.channel, "ratings", page=2)
    assert page2.response.embeds[0].description.count("★") == 2
    page3 = await world.member.slash(world.channel, "ratings", page=3)
    assert "only have 2 pages" in page3.response.content

    # Bob sees his own (empty) ratings, never alice's.
    bob = await world.other.slash(world.channel, "ratings")
    assert "No ratings yet" in bob.response.embeds[0].description


async def test_forget_deletes_only_after_confirmation(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    await world.other.slash(world.channel, "rate", movie="id:1", stars=2.0)

    prompt = await world.member.slash(world.channel, "forget")
    assert prompt.ephemeral and "cannot be undone" in prompt.response.content
    cancelled = await world.member.click(prompt.response, label="Cancel")
    assert "nothing was deleted" in cancelled.response.content
    assert world.member.id in fake_service.ratings_by_user

    prompt = await world.member.slash(world.channel, "forget")
    done = await world.member.click(prompt.response, label="Delete everything")
    assert "deleted 1 rating" in done.response.content
    assert world.member.id not in fake_service.ratings_by_user
    assert world.other.id in fake_service.ratings_by_user  # bob's ratings untouched
    assert ("forget", world.member.id) in fake_service.calls


async def test_forget_times_out_without_deleting(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    await simcord_env.advance_time(61)
    assert "No answer in time" in prompt.response.content
    assert prompt.response.components == []
    assert world.member.id in fake_service.ratings_by_user


async def test_forget_buttons_answer_only_their_owner(simcord_env, world, fake_service, monkeypatch):
    """The prompt is ephemeral, so only alice sees it; a modified client that presses it anyway
    goes through discord.py's real component handling and the view refuses it."""
    import simcord.actors

    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    monkeypatch.setattr(simcord.actors, "can_access_message", lambda *_args: True)
    refused = await world.other.click(prompt.response, label="Delete everything")
    assert refused.ephemeral and "Only the member who asked" in refused.response.content
    assert world.member.id in fake_service.ratings_by_user
    assert not [c for c in fake_service.calls if c[0] == "forget"]
    done = await world.member.click(prompt.response, label="Delete everything")  # still works for alice
    assert "deleted 1 rating" in done.response.content


async def test_a_bug_in_the_service_gets_a_private_apology_and_a_logged_traceback(
    simcord_env, world, fake_service, caplog
):
    fake_service.fail_with = RuntimeError("database on fire")
    with caplog.at_level(logging.ERROR, logger="bot.gate"):
        result = await world.member.slash(world.channel, "recommend")
    # The public "thinking…" placeholder is replaced by a private apology; the exception stays in the log.
    assert result.response is None
    assert len(result.followups) == 1 and result.followups[0].ephemeral
    assert "something went wrong" in result.followups[0].content
    assert "database on fire" not in result.followups[0].content
    record = next(r for r in caplog.records if r.name == "bot.gate")
    assert record.exc_info and "database on fire" in str(record.exc_info[1])
    assert any("database on fire" in str(e) for e in simcord_env.errors)


async def test_every_interaction_logs_one_structured_line(
    simcord_env, world, fake_service, caplog, lenient_discord
):
    with caplog.at_level(logging.INFO, logger="bot.interactions"):
        await world.member.slash(world.channel, "recommend")
        await world.member.slash(world.channel, "rate", movie="id:1", stars=4.4)
    lines = [r for r in caplog.records if r.name == "bot.interactions"]
    assert len(lines) == 2
    ok = json.loads(lines[0].getMessage().split(" ", 1)[1])
    assert ok["command"] == "recommend" and ok["outcome"] == "ok" and ok["path"] == "popularity"
    assert ok["user_id"] == world.member.id and ok["guild_id"] == world.guild.id
    assert isinstance(ok["latency_ms"], float) and ok["latency_ms"] >= 0
    bad = lines[1].interaction  # type: ignore[attr-defined]
    assert bad["command"] == "rate" and bad["outcome"] == "error:InvalidStars"
    assert handled_errors(simcord_env) == ["InvalidStars"]


async def test_forget_when_the_database_refuses_says_so_and_keeps_the_ratings(
    simcord_env, world, fake_service, caplog
):
    from recommender.core.errors import StorageUnavailable

    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    fake_service.fail_with = StorageUnavailable()
    with caplog.at_level(logging.INFO, logger="bot.interactions"):
        answer = await world.member.click(prompt.response, label="Delete everything")
    assert "nothing was changed" in answer.response.content and answer.response.components == []
    assert world.member.id in fake_service.ratings_by_user
    line = next(r for r in caplog.records if r.name == "bot.interactions")
    assert line.interaction["command"] == "forget:confirm"  # type: ignore[attr-defined]
    assert line.interaction["outcome"] == "error:StorageUnavailable"  # type: ignore[attr-defined]
