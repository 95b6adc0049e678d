"""Abuse: per-member and per-server command budgets, and one member can never reach another's data."""

from __future__ import annotations

import discord
import pytest
import simcord
from discord import app_commands

from bot.client import COGS, create_bot
from bot.errors import unwrap
from recommender.core.config import Settings
from tests.bot.fakes import FakeService


def handled(env) -> list[str]:
    return [type(unwrap(e)).__name__ for e in env.errors]


async def test_a_server_over_its_budget_is_asked_to_wait_and_other_servers_are_not(fake_service, tmp_path):
    settings = Settings(data_dir=tmp_path, guild_commands_per_minute=4, user_commands_per_minute=30)
    async with simcord.run(create_bot(settings, fake_service)) as env:
        busy, calm = env.create_guild("Busy"), env.create_guild("Calm")
        channel, other_channel = busy.create_text_channel("a"), calm.create_text_channel("b")
        members = [busy.add_member(env.create_user(f"m{i}")) for i in range(3)]
        for i in range(4):  # four different members' worth of commands fill the server's minute
            ok = await members[i % 3].slash(channel, "ratings")
            assert ok.response.embeds, ok.response.content
        refused = await members[2].slash(channel, "ratings")
        assert refused.ephemeral and "This server is sending me a lot of commands" in refused.response.content
        assert "try again in" in refused.response.content
        elsewhere = calm.add_member(env.create_user("z"))
        assert (await elsewhere.slash(other_channel, "ratings")).response.embeds
        assert handled(env) == ["GuildBusy"]
        assert env.bot.interaction_stats.outcomes["rate_limited"] == 1


async def test_a_member_over_their_budget_waits_without_using_up_the_servers(fake_service, tmp_path):
    settings = Settings(data_dir=tmp_path, guild_commands_per_minute=3, user_commands_per_minute=2)
    async with simcord.run(create_bot(settings, fake_service)) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("a")
        alice, bob, carol = (guild.add_member(env.create_user(n)) for n in ("alice", "bob", "carol"))
        for _ in range(2):
            assert (await alice.slash(channel, "similar", movie="Heat")).response.embeds
        limited = await alice.slash(channel, "ratings")  # a different command: the budget is per member
        assert limited.ephemeral and "You're going a bit fast" in limited.response.content
        # alice's refused command did not count against the server: bob still has the third slot.
        assert (await bob.slash(channel, "ratings")).response.embeds
        full = await carol.slash(channel, "ratings")
        assert "This server is sending me a lot" in full.response.content
        assert handled(env) == ["CommandOnCooldown", "GuildBusy"]


async def test_autocomplete_does_not_spend_the_budget(fake_service, tmp_path):
    settings = Settings(data_dir=tmp_path, guild_commands_per_minute=2, user_commands_per_minute=2)
    async with simcord.run(create_bot(settings, fake_service)) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("a")
        alice = guild.add_member(env.create_user("alice"))
        for typed in ("t", "to", "toy", "toy ", "toy s"):  # every keystroke is an autocomplete
            assert await alice.autocomplete(channel, "rate", "movie", typed)
        assert "Saved" in (await alice.slash(channel, "rate", movie="id:1", stars=4.0)).response.content


async def test_no_command_takes_another_member_as_a_parameter(tmp_path):
    """/ratings and /forget (and everything else) can only ever act on the member who invokes them."""
    expected = {
        "rate": {"movie", "stars"},
        "ratings": {"page"},
        "forget": set(),
        "recommend": {"genre", "decade", "since", "until"},
        "unrate": {"movie"},
        "import": {"file"},
        "export": set(),
        "watchlist": set(),
        "hidden": set(),
        "predict": {"movie"},
        "similar": {"movie"},
        "retrain": set(),
        "stats": set(),
        "addmovie": {"title", "year", "genres", "imdb"},
        "editmovie": {"movie", "title", "year", "genres", "imdb"},
        "removemovie": {"movie"},
        "movienight": {"genre", "decade", "minutes"},  # members join themselves, by button
    }

    bot = create_bot(Settings(data_dir=tmp_path), FakeService(), sync_commands=False)
    for name in COGS:
        await bot.load_extension(name)
    tree_commands = {c.name: c for c in bot.tree.get_commands() if isinstance(c, app_commands.Command)}
    await bot.close()
    assert set(tree_commands) == set(expected)
    for name, command in tree_commands.items():
        assert {p.name for p in command.parameters} == expected[name], name
        for param in command.parameters:
            assert param.type not in (
                discord.AppCommandOptionType.user,
                discord.AppCommandOptionType.mentionable,
            ), f"/{name} {param.name} takes a user"


async def test_ratings_and_forget_touch_only_the_invoker(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    await world.member.slash(world.channel, "rate", movie="id:2", stars=2.0)
    await world.other.slash(world.channel, "rate", movie="id:3", stars=5.0)

    bobs = await world.other.slash(world.channel, "ratings")
    text = bobs.response.embeds[0].description
    assert bobs.ephemeral and "Heat" in text and "Toy Story" not in text and "Jumanji" not in text

    # alice's /forget prompt is private: bob can't even see it, let alone press its button.
    prompt = await world.member.slash(world.channel, "forget")
    with pytest.raises(simcord.SetupError):
        await world.other.click(prompt.response, label="Delete everything")
    assert world.member.id in fake_service.ratings_by_user

    # bob's own /forget deletes bob's ratings only.
    own = await world.other.slash(world.channel, "forget")
    done = await world.other.click(own.response, label="Delete everything")
    assert "deleted 1 rating" in done.response.content
    assert world.other.id not in fake_service.ratings_by_user
    assert set(fake_service.ratings_by_user[world.member.id]) == {1, 2}
    assert [c for c in fake_service.calls if c[0] == "forget"] == [("forget", world.other.id)]


def test_budget_settings_come_from_the_environment():
    from recommender.core.config import ConfigError

    settings = Settings.from_env({"USER_COMMANDS_PER_MINUTE": "5", "GUILD_COMMANDS_PER_MINUTE": "50"})
    assert (settings.user_commands_per_minute, settings.guild_commands_per_minute) == (5, 50)
    defaults = Settings.from_env({})
    assert (defaults.user_commands_per_minute, defaults.guild_commands_per_minute) == (30, 120)
    with pytest.raises(ConfigError, match="GUILD_COMMANDS_PER_MINUTE"):
        Settings.from_env({"GUILD_COMMANDS_PER_MINUTE": "0"})
