"""The buttons and selects under /recommend, /similar, /hidden, /watchlist and "did you mean",
pressed through discord.py's real component handling (simcord), over the fake service."""

from __future__ import annotations

import json
import logging

from bot.lifecycle import SHUTDOWN_MESSAGE
from bot.ui.words import NOT_YOUR_LIST
from recommender.serving.contract import PickFilter
from tests.bot.test_member_commands import handled_errors


def custom_ids(message) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row["components"] if "custom_id" in c]


def labels(message) -> list[str]:
    return [c.get("label") for row in message.components for c in row["components"]]


def pick_ids(message) -> list[int]:
    return [int(cid.split(":")[3]) for cid in custom_ids(message) if cid.startswith("rec:rate:")]


async def test_every_pick_has_rate_hide_watchlist_and_more_like_this(simcord_env, world):
    shown = await world.member.slash(world.channel, "recommend")
    message = shown.response
    owner = world.member.id
    assert len(message.components) == 5  # one row per pick, Discord's most
    for row, movie_id in zip(message.components, pick_ids(message), strict=True):
        assert [c["custom_id"] for c in row["components"]][:4] == [
            f"rec:rate:{owner}:{movie_id}",
            f"rec:hide:{owner}:{movie_id}",
            f"rec:watch:{owner}:{movie_id}",
            f"rec:like:{owner}:{movie_id}",
        ]
    assert labels(message)[:4] == ["#1 Rate", "Not interested", "Watchlist", "More like this"]
    assert custom_ids(message)[-1] == f"rec:more:{owner}:5:::"
    # Every movie links out; Toy Story carries its IMDb and TMDB ids in the fake catalogue.
    first = message.embeds[0].fields[0].value
    assert (
        "https://www.imdb.com/title/tt0114709/" in first and "https://www.themoviedb.org/movie/862" in first
    )


async def test_rate_button_offers_the_scale_as_a_select_and_stores_the_choice(
    simcord_env, world, fake_service
):
    shown = await world.member.slash(world.channel, "recommend")
    movie_id = pick_ids(shown.response)[0]
    asked = await world.member.click(shown.response, custom_id=f"rec:rate:{world.member.id}:{movie_id}")
    assert asked.ephemeral and "How many stars" in asked.response.content
    [select] = asked.response.components[0]["components"]
    assert [o["value"] for o in select["options"]] == [
        "5",
        "4.5",
        "4",
        "3.5",
        "3",
        "2.5",
        "2",
        "1.5",
        "1",
        "0.5",
    ]
    rated = await world.member.select(asked.response, ["4.5"], custom_id=select["custom_id"])
    assert "Saved" in rated.response.content and "4.5★" in rated.response.content
    assert rated.response.components == []
    assert fake_service.ratings_by_user[world.member.id][movie_id].stars == 4.5


async def test_a_forged_star_value_gets_the_same_refusal_as_rate(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend")
    movie_id = pick_ids(shown.response)[0]
    asked = await world.member.click(shown.response, custom_id=f"rec:rate:{world.member.id}:{movie_id}")
    custom_id = asked.response.components[0]["components"][0]["custom_id"]
    for bad in ("4.3", "lots"):
        refused = await forged_select(world.member, asked.response, custom_id, bad)
        assert refused.ephemeral and "0.5 to 5 in half stars" in refused.response.content
    assert world.member.id not in fake_service.ratings_by_user
    assert handled_errors(simcord_env) == []  # refused and answered inside the press, not raised


async def forged_select(member, message, custom_id: str, value: str):
    """A modified client sending a value the select never offered (simcord, like Discord, would
    refuse it): the raw component payload, through discord.py's real dispatch."""
    import simcord.actors

    stored = simcord.actors._visible_message(member, message)
    data = {"custom_id": custom_id, "component_type": 3, "values": [value]}
    return await simcord.actors._component_interaction(member, stored, data)


async def test_not_interested_hides_from_recommend_and_similar_until_restored(
    simcord_env, world, fake_service
):
    shown = await world.member.slash(world.channel, "recommend")
    hidden_id = pick_ids(shown.response)[0]
    done = await world.member.click(shown.response, custom_id=f"rec:hide:{world.member.id}:{hidden_id}")
    assert done.ephemeral and "Hidden **Toy Story (1995)**" in done.response.content
    again = await world.member.click(shown.response, custom_id=f"rec:hide:{world.member.id}:{hidden_id}")
    assert "already hidden" in again.response.content

    simcord_env.bot.cooldowns.reset()
    fresh = await world.member.slash(world.channel, "recommend")
    assert hidden_id not in pick_ids(fresh.response)
    similar = await world.member.slash(world.channel, "similar", movie="id:2")
    assert not any("Toy Story (1995)" in f.name for f in similar.response.embeds[0].fields)

    listing = await world.member.slash(world.channel, "hidden")
    assert listing.ephemeral and "Toy Story (1995)" in listing.response.embeds[0].description
    [select] = listing.response.components[0]["components"]
    assert select["custom_id"] == f"lst:hidden:{world.member.id}"
    restored = await world.member.select(listing.response, [str(hidden_id)], custom_id=select["custom_id"])
    assert "1 movie can be recommended again" in restored.response.content
    assert "haven't hidden any" in restored.response.embeds[0].description
    assert fake_service.hidden_by_user[world.member.id] == []


async def test_watchlist_button_and_the_watchlist_command(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend")
    first, second = pick_ids(shown.response)[:2]
    for movie_id in (first, second):
        added = await world.member.click(shown.response, custom_id=f"rec:watch:{world.member.id}:{movie_id}")
        assert "to your watchlist" in added.response.content
    listing = await world.member.slash(world.channel, "watchlist")
    text = listing.response.embeds[0].description
    assert listing.ephemeral and text.index("Jumanji") < text.index("Toy Story")  # newest first
    [select] = listing.response.components[0]["components"]
    removed = await world.member.select(listing.response, [str(first)], custom_id=select["custom_id"])
    assert "Removed 1 movie" in removed.response.content
    assert fake_service.watchlist_by_user[world.member.id] == [second]
    bob = await world.other.slash(world.channel, "watchlist")
    assert "empty" in bob.response.embeds[0].description


async def test_more_like_this_answers_privately_with_its_own_buttons(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend")
    movie_id = pick_ids(shown.response)[2]
    like = await world.member.click(shown.response, custom_id=f"rec:like:{world.member.id}:{movie_id}")
    assert like.ephemeral and like.response.embeds[0].title == "Movies like Heat (1995)"
    assert len(like.response.embeds[0].fields) == 5
    assert all(cid.split(":")[2] == str(world.member.id) for cid in custom_ids(like.response))
    assert ("similar", movie_id) in fake_service.calls


async def test_show_more_pages_the_same_list_in_place(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend", genre="Drama")
    first = pick_ids(shown.response)
    more = await world.member.click(shown.response, custom_id=f"rec:more:{world.member.id}:5:Drama::")
    page = more.response
    assert page.id == shown.response.id  # edited, not a new message in the channel
    second = pick_ids(page)
    assert len(second) == 5 and not set(first) & set(second)
    assert page.embeds[0].fields[0].name.startswith("6. ")
    assert "Drama" in page.embeds[0].title
    assert custom_ids(page)[-1] == f"rec:more:{world.member.id}:10:Drama::"
    assert ("recommend_options", (PickFilter("Drama"), 5)) in fake_service.calls


async def test_another_member_pressing_gets_told_and_changes_nothing(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend")
    movie_id = pick_ids(shown.response)[0]
    for kind in ("hide", "watch", "rate", "like"):
        refused = await world.other.click(
            shown.response, custom_id=f"rec:{kind}:{world.member.id}:{movie_id}"
        )
        assert refused.ephemeral and refused.response.content == NOT_YOUR_LIST
    refused = await world.other.click(shown.response, custom_id=f"rec:more:{world.member.id}:5:::")
    assert refused.response.content == NOT_YOUR_LIST
    assert not fake_service.hidden_by_user and not fake_service.watchlist_by_user
    assert shown.response.embeds[0].fields[0].name.startswith("1. ")  # the list was not paged


async def test_presses_share_the_commands_budget_and_log_one_line_each(simcord_env, world, caplog):
    shown = await world.member.slash(world.channel, "recommend")  # one of /recommend's three per 30 s
    with caplog.at_level(logging.INFO, logger="bot.interactions"):
        for skip in (5, 10):
            page = await world.member.click(shown.response, custom_id=f"rec:more:{world.member.id}:{skip}:::")
            assert page.response.embeds, page.response.content
        limited = await world.member.click(shown.response, custom_id=f"rec:more:{world.member.id}:15:::")
    assert limited.ephemeral and "try again in" in limited.response.content
    lines = [
        json.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records if r.name == "bot.interactions"
    ]
    assert [(line["command"], line["outcome"]) for line in lines] == [
        ("rec:more", "ok"),
        ("rec:more", "ok"),
        ("rec:more", "cooldown"),
    ]
    assert handled_errors(simcord_env) == []  # a cooldown is an answer, not an error
    stats = simcord_env.bot.interaction_stats
    assert stats.commands["rec:more"] == 3 and stats.errors["rec:more"] == 1


async def test_presses_are_refused_politely_while_shutting_down(simcord_env, world, fake_service):
    shown = await world.member.slash(world.channel, "recommend")
    movie_id = pick_ids(shown.response)[0]
    simcord_env.bot.in_flight.draining = True
    refused = await world.member.click(shown.response, custom_id=f"rec:hide:{world.member.id}:{movie_id}")
    assert refused.ephemeral and refused.response.content == SHUTDOWN_MESSAGE
    assert not fake_service.hidden_by_user


async def test_did_you_mean_titles_are_buttons_that_finish_the_command(simcord_env, world, fake_service):
    missed = await world.member.slash(world.channel, "rate", movie="Toy Stroy", stars=4.0)
    assert missed.ephemeral and "Pick one below" in missed.response.content
    ids = custom_ids(missed.response)
    assert f"pick:rate:{world.member.id}:1:4" in ids
    assert "Toy Story (1995)" in labels(missed.response)
    saved = await world.member.click(missed.response, custom_id=f"pick:rate:{world.member.id}:1:4")
    assert "Saved: **Toy Story (1995)** — 4.0★" in saved.response.content
    assert fake_service.ratings_by_user[world.member.id][1].stars == 4.0

    predicted = await world.member.slash(world.channel, "predict", movie="Toy Stroy")
    notice = predicted.response  # the option is resolved before /predict answers: a private miss
    assert notice.ephemeral and not predicted.followups
    answer = await world.member.click(notice, custom_id=f"pick:predict:{world.member.id}:1")
    assert answer.response.embeds[0].title == "Toy Story (1995)"
    assert handled_errors(simcord_env) == ["UnknownMovie", "UnknownMovie"]


async def test_remakes_are_offered_by_year_not_called_missing(simcord_env, world, fake_service):
    asked = await world.member.slash(world.channel, "rate", movie="The Thing", stars=3.5)
    text = asked.response.content
    assert "several movies called “The Thing” (1982, 2011)" in text and "couldn't find" not in text
    assert labels(asked.response) == ["The Thing (1982)", "The Thing (2011)"]
    saved = await world.member.click(asked.response, custom_id=f"pick:rate:{world.member.id}:11:3.5")
    assert "The Thing (2011)" in saved.response.content
    assert fake_service.ratings_by_user[world.member.id][11].stars == 3.5
    handled_errors(simcord_env)
