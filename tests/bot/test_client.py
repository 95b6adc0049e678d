"""The one private discord.py API the bot relies on fails loudly when discord.py changes it."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from discord import app_commands

from bot.client import MovieTree

ROOT = Path(__file__).resolve().parents[2]


def test_the_private_call_we_wrap_keeps_its_signature():
    """``MovieTree`` wraps ``CommandTree._call`` (every command and autocomplete passes it): if a
    discord.py release renames or changes it, the in-flight gate and shutdown refusal would silently
    stop working, so this fails first."""
    assert hasattr(app_commands.CommandTree, "_call"), "discord.py no longer has CommandTree._call"
    theirs = inspect.signature(app_commands.CommandTree._call)
    assert str(theirs) == "(self, interaction: 'Interaction[ClientT]') -> 'None'"
    assert inspect.iscoroutinefunction(app_commands.CommandTree._call)
    ours = inspect.signature(MovieTree._call)
    assert list(ours.parameters) == list(theirs.parameters)


def test_discord_py_is_pinned_to_the_release_line_the_override_was_checked_against():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "discord.py~=2.7" in dependencies
