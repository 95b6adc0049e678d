"""Every cog loads; command names are unique; every command and parameter is described."""

from __future__ import annotations

import importlib

from discord import app_commands

from bot.client import COGS, create_bot
from recommender.core.config import Settings
from tests.bot.fakes import FakeService

EXPECTED = {
    "rate",
    "unrate",
    "recommend",
    "predict",
    "similar",
    "ratings",
    "forget",
    "import",
    "export",
    "watchlist",
    "hidden",
    "retrain",
    "stats",
}
EXPECTED |= {"addmovie", "editmovie", "removemovie", "movienight"}
ADMIN = {"retrain", "stats", "addmovie", "editmovie", "removemovie"}


async def test_every_cog_loads_with_unique_described_commands(tmp_path):
    for name in COGS:
        assert hasattr(importlib.import_module(name), "setup"), f"{name} has no setup()"
    bot = create_bot(Settings(data_dir=tmp_path), FakeService(), sync_commands=False)
    for name in COGS:
        await bot.load_extension(name)
    commands = bot.tree.get_commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names)), f"duplicate command names: {names}"
    assert set(names) == EXPECTED
    for command in commands:
        assert isinstance(command, app_commands.Command)
        assert command.description and command.description != "…", f"/{command.name} has no description"
        for param in command.parameters:
            assert param.description and param.description != "…", f"/{command.name} {param.name} undescribed"
    admin = {c.name: c for c in commands if c.name in ADMIN}
    assert set(admin) == ADMIN
    for command in admin.values():
        assert command.default_permissions is not None and command.default_permissions.manage_guild
        assert command.guild_only
        assert command.checks, f"/{command.name} relies on the visibility hint alone"
    assert admin.keys().isdisjoint({"movienight"})
    movienight = next(c for c in commands if c.name == "movienight")
    assert movienight.guild_only  # a movie night needs a channel of members
    assert [p.name for p in movienight.parameters] == ["genre", "decade", "minutes"]
    await bot.close()
