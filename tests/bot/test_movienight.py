"""/movienight through discord.py's real command and component handling (simcord), over the REAL
service, storage and a real ServingModel: the card, every button, the poll, the clock, a restart in
between, and the bad cases (nobody joins, only the host, everyone leaves, the host leaves, a second
night in the channel, the 21st member)."""

from __future__ import annotations

import json
import logging
import re

import simcord.actors

from bot.lifecycle import SHUTDOWN_MESSAGE
from recommender.serving.contract import MovieNightState, ServingPath
from tests.bot.movienight_world import buttons, movie_night_world, night_id_of, pick_titles, stars_by_member
from tests.bot.test_components import custom_ids
from tests.bot.test_member_commands import handled_errors
from tests.recommender.serving.service_fakes import CLUSTER_A, CLUSTER_B

WAIT = 90  # seconds of bot time past a one-minute night: the closing loop checks every 30 s


async def press(member, message, action: str, night_id: int):  # type: ignore[no-untyped-def]
    return await member.click(message, custom_id=f"mn:{action}:{night_id}")


async def forged_press(member, message, custom_id: str):  # type: ignore[no-untyped-def]
    """A press of a button the card no longer shows (a stale client, a forged payload), through
    discord.py's real dispatch: simcord, like Discord's client, would not offer it."""
    stored = simcord.actors._visible_message(member, message)
    return await simcord.actors._component_interaction(
        member, stored, {"custom_id": custom_id, "component_type": 2}
    )


def members_field(message) -> str:  # type: ignore[no-untyped-def]
    [field] = [f for f in message.embeds[0].fields if f.name.startswith("In (")]
    return field.value


async def picked_ids(world, message) -> list[int]:  # type: ignore[no-untyped-def]
    return [world.service.resolve(title).movie_id for title in pick_titles(message.embeds[0])]


async def test_the_card_and_members_joining_and_leaving_themselves(tmp_path, caplog) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]
        shown = await w.host.slash(w.channel, "movienight")
        card = shown.response
        assert not shown.ephemeral and card.embeds[0].title == "🍿 Movie night"
        night = night_id_of(card)
        assert custom_ids(card) == [f"mn:join:{night}", f"mn:leave:{night}", f"mn:pick:{night}"]
        assert [c.get("label") for row in card.components for c in row["components"]] == [
            "I'm in",
            "I'm out",
            "Pick",
        ]
        assert f"Hosted by <@{w.host.id}>" in card.embeds[0].description
        assert members_field(card) == f"<@{w.host.id}>"  # the host is in from the start

        with caplog.at_level(logging.INFO, logger="bot.interactions"):
            joined = await press(bob, card, "join", night)
        assert joined.followups[0].ephemeral and joined.followups[0].content == "You're in! 2 members so far."
        assert members_field(shown.response) == f"<@{w.host.id}>, <@{bob.id}>"  # the card, edited in place
        logged = [
            json.loads(r.getMessage().split(" ", 1)[1])
            for r in caplog.records
            if r.name == "bot.interactions"
        ]
        assert [(line["command"], line["outcome"]) for line in logged] == [("mn:join", "ok")]  # the gate

        again = await press(bob, card, "join", night)
        assert again.ephemeral and again.response.content == "You're already in this movie night."
        await press(carol, card, "join", night)
        out = await press(carol, card, "leave", night)
        assert out.followups[0].content == "You're out."
        never = await press(w.members[2], card, "leave", night)
        assert never.ephemeral and "weren't in" in never.response.content
        assert members_field(shown.response) == f"<@{w.host.id}>, <@{bob.id}>"
        assert (await w.service.movie_night(night)).members == (w.host.id, bob.id)


async def test_nobody_can_add_someone_else(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        # The button names the night only: whoever presses it is the one who joins.
        await press(bob, shown.response, "join", night)
        assert (await w.service.movie_night(night)).members == (w.host.id, bob.id)
        # A payload naming another member matches no button of the bot: nothing happens.
        forged = await forged_press(bob, shown.response, f"mn:join:{night}:{carol.id}")
        assert not forged.acknowledged
        assert (await w.service.movie_night(night)).members == (w.host.id, bob.id)
        # Bob's "I'm out" only ever takes Bob out.
        await press(bob, shown.response, "leave", night)
        assert (await w.service.movie_night(night)).members == (w.host.id,)


async def test_the_hosts_pick_shows_three_movies_nobody_rated_or_hid_with_everyones_stars(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]  # Carol has no ratings at all
        await w.train({w.host: CLUSTER_A, bob: CLUSTER_B})
        await w.service.hide(bob.id, CLUSTER_A[2])
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        for member in (bob, carol):
            await press(member, shown.response, "join", night)

        refused = await press(bob, shown.response, "pick", night)
        assert refused.ephemeral and refused.response.content == (
            f"Only the host, <@{w.host.id}>, can pick, re-roll or open the poll."
        )
        assert buttons(shown.response) == ["join", "leave", "pick"]  # nothing changed

        picked = await press(w.host, shown.response, "pick", night)
        card = picked.response
        assert card.id == shown.response.id and card.embeds[0].title == "🍿 Movie night picks"
        chosen = await picked_ids(w, card)
        assert len(chosen) == 3
        rated_or_hidden = {*CLUSTER_A[:2], *CLUSTER_B[:2], CLUSTER_A[2]}
        assert not rated_or_hidden & set(chosen)
        description = card.embeds[0].description
        assert f"No ratings yet, so counted with the crowd's view: <@{carol.id}>." in description
        for field, movie_id in zip(card.embeds[0].fields, chosen, strict=True):
            each = stars_by_member(field.value)
            assert list(each) == [w.host.id, bob.id, carol.id]
            for member_id, text in each.items():
                predicted = await w.service.predict(member_id, movie_id)
                assert abs(float(text[:-1]) - predicted.stars) <= 0.051
        assert buttons(card) == ["poll", "reroll"]  # the group is set: no more joining or leaving
        late = await forged_press(w.members[2], card, f"mn:join:{night}")
        assert not late.acknowledged  # a button the card no longer has: discord.py dispatches nothing
        assert (await w.service.movie_night(night)).members == (w.host.id, bob.id, carol.id)


async def test_the_poll_holds_the_three_titles_and_re_roll_brings_others(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob = w.members[0]
        await w.train({w.host: CLUSTER_A, bob: CLUSTER_B})
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        await press(bob, shown.response, "join", night)
        await press(w.host, shown.response, "pick", night)
        titles = pick_titles(shown.response.embeds[0])

        refused = await press(bob, shown.response, "poll", night)
        assert refused.ephemeral and "Only the host" in refused.response.content
        polled = await press(w.host, shown.response, "poll", night)
        [message] = polled.followups
        assert not message.ephemeral and message.channel_id == w.channel.id
        poll = message.message.poll
        assert poll is not None and poll.question == "Which one do we watch?"
        assert [a.text for a in poll.answers] == titles and not poll.multiple
        assert poll.duration.total_seconds() == 24 * 3600
        assert buttons(shown.response) == ["reroll"]  # one poll per set of picks

        rerolled = await press(w.host, shown.response, "reroll", night)
        fresh = pick_titles(rerolled.response.embeds[0])
        assert len(fresh) == 3 and not set(fresh) & set(titles)
        assert rerolled.response.embeds[0].description.startswith("Re-rolled: none of these were on the card")
        assert buttons(shown.response) == ["poll", "reroll"]  # the new picks may have their poll
        assert (await press(bob, shown.response, "reroll", night)).response.content.startswith(
            "Only the host"
        )


async def test_re_rolling_shares_the_commands_budget(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        shown = await w.host.slash(w.channel, "movienight")  # one of six per minute
        night = night_id_of(shown.response)
        await press(w.members[0], shown.response, "join", night)
        await press(w.host, shown.response, "pick", night)
        answers = [await press(w.host, shown.response, "reroll", night) for _ in range(5)]
        assert all(not a.ephemeral for a in answers[:4])
        assert answers[4].ephemeral and "try again in" in answers[4].response.content
        w.bot.in_flight.draining = True
        stopping = await press(w.members[0], shown.response, "reroll", night)
        assert stopping.response.content == SHUTDOWN_MESSAGE


async def test_buttons_and_the_clock_keep_working_after_a_restart(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]
        await w.train({w.host: CLUSTER_A, bob: CLUSTER_B})
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        other_channel = w.env.guild.create_text_channel("other")
        timed = await carol.slash(other_channel, "movienight", minutes=1)
        await press(bob, timed.response, "join", night_id_of(timed.response))

        await w.restart()  # a new bot and service over the same database
        joined = await press(bob, shown.response, "join", night)
        assert joined.followups[0].content == "You're in! 2 members so far."
        picked = await press(w.host, shown.response, "pick", night)
        first = pick_titles(picked.response.embeds[0])
        assert len(first) == 3
        rerolled = await press(w.host, shown.response, "reroll", night)
        assert not set(pick_titles(rerolled.response.embeds[0])) & set(first)

        # the night opened before the restart closes on time, picked by the new bot's loop
        await w.env.advance_time(WAIT)
        card = timed.response
        assert card.embeds[0].description.startswith("Time's up: I picked for the 2 members who joined.")
        assert len(card.embeds[0].fields) == 3 and buttons(card) == ["poll", "reroll"]


async def test_a_second_movie_night_in_the_channel_points_at_the_open_one(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob = w.members[0]
        first = await w.host.slash(w.channel, "movienight")
        second = await bob.slash(w.channel, "movienight")
        assert second.ephemeral
        url = f"https://discord.com/channels/{w.env.guild.id}/{w.channel.id}/{first.response.id}"
        assert second.response.content == (
            f"There's already a movie night open in this channel, hosted by <@{w.host.id}>: {url}. "
            "Join that one; a new one can start here once it has its picks."
        )
        assert handled_errors(w.env) == ["MovieNightRefused"]
        elsewhere = await bob.slash(w.env.guild.create_text_channel("other"), "movienight")
        assert not elsewhere.ephemeral and buttons(elsewhere.response) == ["join", "leave", "pick"]


async def test_when_nobody_else_joins_pick_waits_and_time_ends_it(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        shown = await w.host.slash(w.channel, "movienight", minutes=1)
        night = night_id_of(shown.response)
        alone = await press(w.host, shown.response, "pick", night)
        assert alone.ephemeral and alone.response.content == (
            "A movie night needs at least 2 members: wait for someone to press **I'm in**."
        )
        await w.env.advance_time(WAIT)
        card = shown.response
        assert card.embeds[0].description == (
            f"Time's up and only <@{w.host.id}> was in: a movie night needs at least 2 members, so no "
            "pick this time. Start another with `/movienight`."
        )
        assert card.components == []  # nothing left to press
        assert (await w.service.movie_night(night)).state is MovieNightState.CLOSED
        again = await w.host.slash(w.channel, "movienight")  # the channel is free
        assert buttons(again.response) == ["join", "leave", "pick"]


async def test_everyone_leaving_cancels_it(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob = w.members[0]
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        await press(bob, shown.response, "join", night)
        await press(bob, shown.response, "leave", night)
        last = await press(w.host, shown.response, "leave", night)
        assert last.followups[0].content == "You're out. Nobody is left, so this movie night is cancelled."
        card = shown.response
        assert card.embeds[0].description == (
            "Everyone left, so this movie night is cancelled. Start another with `/movienight`."
        )
        assert card.components == []
        assert (await w.service.movie_night(night)).state is MovieNightState.CLOSED


async def test_the_host_leaving_hands_the_night_to_the_earliest_joined(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        for member in (bob, carol):
            await press(member, shown.response, "join", night)
        gone = await press(w.host, shown.response, "leave", night)
        assert gone.followups[0].content == f"You're out. <@{bob.id}> is the host now."
        card = shown.response.embeds[0]
        assert card.description.startswith(f"<@{w.host.id}> left, so <@{bob.id}> is the host now.")
        assert f"Hosted by <@{bob.id}>." in card.description
        assert members_field(shown.response) == f"<@{bob.id}>, <@{carol.id}>"
        not_now = await press(w.host, shown.response, "pick", night)
        assert not_now.response.content == f"Only the host, <@{bob.id}>, can pick, re-roll or open the poll."
        picked = await press(bob, shown.response, "pick", night)
        assert list(stars_by_member(picked.response.embeds[0].fields[0].value)) == [bob.id, carol.id]


async def test_twenty_members_and_a_polite_no_for_the_twenty_first(tmp_path) -> None:
    async with movie_night_world(tmp_path, n_members=20) as w:
        await w.train({w.host: CLUSTER_A, w.members[0]: CLUSTER_B})
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        for member in w.members[:19]:
            await press(member, shown.response, "join", night)
        full = await press(w.members[19], shown.response, "join", night)
        assert full.ephemeral and full.response.content.startswith(
            "Sorry, this movie night is full: 20 members is the most I pick for."
        )
        assert members_field(shown.response).count("<@") == 20
        picked = await press(w.host, shown.response, "pick", night)
        fields = picked.response.embeds[0].fields
        assert len(fields) == 3
        expected = [w.host.id, *(m.id for m in w.members[:19])]
        assert all(list(stars_by_member(f.value)) == expected for f in fields)


async def test_a_member_folded_in_since_training_brings_their_new_taste(tmp_path) -> None:
    async with movie_night_world(tmp_path) as w:
        bob, carol = w.members[:2]
        await w.train({w.host: CLUSTER_A, bob: CLUSTER_B})
        # Carol rates after the model was trained: she is folded in at once, no retraining.
        for movie_id in CLUSTER_B[2:6]:
            await carol.slash(w.channel, "rate", movie=f"id:{movie_id}", stars=5.0)
        for movie_id in CLUSTER_A[:4]:
            await carol.slash(w.channel, "rate", movie=f"id:{movie_id}", stars=1.0)
        assert (await w.service.recommend(carol.id)).path is ServingPath.FOLD_IN
        shown = await bob.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        await press(carol, shown.response, "join", night)
        picked = await press(bob, shown.response, "pick", night)
        chosen = await picked_ids(w, picked.response)
        # Cluster B is the least popular: only Bob's and Carol's own tastes put it on the card.
        assert set(chosen) <= set(CLUSTER_B[6:])
        assert "crowd's view" not in picked.response.embeds[0].description


async def test_filters_and_the_closing_time_setting(tmp_path) -> None:
    async with movie_night_world(tmp_path, movienight_minutes=2) as w:
        bob = w.members[0]
        shown = await w.host.slash(w.channel, "movienight", genre="Comedy", decade=2010)
        card = shown.response.embeds[0]
        assert card.title == "🍿 Movie night: Comedy, 2010–2019"
        night = night_id_of(shown.response)
        await press(bob, shown.response, "join", night)
        await w.env.advance_time(WAIT)  # 1.5 minutes of a 2-minute night: still open
        assert buttons(shown.response) == ["join", "leave", "pick"]
        await w.env.advance_time(WAIT)
        chosen = await picked_ids(w, shown.response)
        movies = [w.service.catalog.get(m) for m in chosen]
        assert len(movies) == 3 and all("Comedy" in m.genres and 2010 <= m.year <= 2019 for m in movies)

        nothing = await w.host.slash(w.channel, "movienight", genre="Comedy", decade=2000)
        night = night_id_of(nothing.response)
        await press(bob, nothing.response, "join", night)
        empty = await press(w.host, nothing.response, "pick", night)
        assert empty.response.embeds[0].fields == []
        assert "I found no movie that nobody here has rated or hidden. Try other filters." in (
            empty.response.embeds[0].description
        )
        assert buttons(empty.response) == ["reroll"]  # no poll of nothing


async def test_a_card_whose_night_the_database_no_longer_has(tmp_path) -> None:
    async with movie_night_world(tmp_path / "old") as w:
        shown = await w.host.slash(w.channel, "movienight")
        night = night_id_of(shown.response)
        w.folder = tmp_path / "new"  # the bot restarts over another, empty database
        await w.restart()
        unknown = await press(w.members[0], shown.response, "join", night)
        assert unknown.ephemeral and unknown.response.content == (
            "I can't find this movie night any more. Start another with `/movienight`."
        )


def test_the_custom_ids_carry_no_member() -> None:
    from bot.ui.night_buttons import NightButton

    assert re.fullmatch(NightButton.__discord_ui_compiled_template__, "mn:join:123")
    assert not re.fullmatch(NightButton.__discord_ui_compiled_template__, "mn:join:123:456")


async def test_a_card_that_cannot_be_posted_frees_the_channel(tmp_path, monkeypatch) -> None:
    import discord

    from bot.ui import night_card

    def too_big(night, picks=None, *, notice=""):  # type: ignore[no-untyped-def]
        return discord.Embed(description="x" * 5000)  # over Discord's 4,096: the post is refused

    async with movie_night_world(tmp_path) as w:
        with monkeypatch.context() as patch:
            patch.setattr(night_card, "night_embed", too_big)
            failed = await w.host.slash(w.channel, "movienight")
        assert failed.ephemeral and failed.response.content.startswith("Sorry, something went wrong")
        assert handled_errors(w.env) == ["HTTPException"]
        assert await w.service.storage.open_movie_night_in(w.channel.id) is None  # closed, not left open
        again = await w.host.slash(w.channel, "movienight")
        assert buttons(again.response) == ["join", "leave", "pick"]


async def test_a_deleted_card_does_not_stop_other_nights_closing(tmp_path, caplog) -> None:
    async with movie_night_world(tmp_path) as w:
        bob = w.members[0]
        lost = await w.host.slash(w.channel, "movienight", minutes=1)
        lost_night = night_id_of(lost.response)
        await press(bob, lost.response, "join", lost_night)
        await w.bot.get_partial_messageable(w.channel.id).get_partial_message(lost.response.id).delete()
        kept = await bob.slash(w.env.guild.create_text_channel("other"), "movienight", minutes=1)
        await press(w.host, kept.response, "join", night_id_of(kept.response))
        with caplog.at_level(logging.WARNING, logger="bot.cogs.movienight"):
            await w.env.advance_time(WAIT)
        assert any(
            f"could not update movie night {lost_night}'s card" in r.getMessage() for r in caplog.records
        )
        assert (await w.service.movie_night(lost_night)).state is MovieNightState.PICKED  # closed anyway
        assert len(kept.response.embeds[0].fields) == 3 and buttons(kept.response) == ["poll", "reroll"]
