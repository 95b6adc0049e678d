"""Fixtures for driving the real bot through discord.py with simcord (no network, no token)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest
import simcord

from bot.client import MovieBot, create_bot
from recommender.core.config import Settings
from tests.bot.fakes import FakeService


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``setup_logging`` replaces the root handlers and sets levels: put them back after each test."""
    changed = [logging.getLogger(), logging.getLogger("discord")]
    saved = [(logger, logger.handlers[:], logger.level, logger.filters[:]) for logger in changed]
    yield
    for logger, handlers, level, filters in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.filters[:] = filters


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small", retrain_min_new_ratings=3)


@pytest.fixture
def fake_service() -> FakeService:
    return FakeService()


@pytest.fixture
def simcord_bot(bot_settings: Settings, fake_service: FakeService) -> MovieBot:
    return create_bot(bot_settings, fake_service)


@dataclass
class World:
    guild: object
    channel: object
    member: object
    other: object
    admin: object


@pytest.fixture
def world(simcord_env) -> World:
    guild = simcord_env.create_guild("Cinema")
    channel = guild.create_text_channel("movies")
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    member = guild.add_member(simcord_env.create_user("alice"))
    other = guild.add_member(simcord_env.create_user("bob"))
    admin = guild.add_member(simcord_env.create_user("carol"), roles=[mods])
    return World(guild, channel, member, other, admin)


@pytest.fixture
def lenient_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let any option value through, as a stale command schema or a forged client would."""
    monkeypatch.setattr(simcord.interactions, "validate_option_value", lambda _cmd, _opt, value: value)
