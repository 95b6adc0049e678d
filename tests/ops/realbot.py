"""The real service (storage, catalog, registry) over a copied ml-100k data dir, for in-process bot tests."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import simcord

from bot.client import create_bot
from bot.errors import unwrap
from recommender.core.config import Settings
from recommender.core.types import DATASETS
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.service import RecommenderService


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, movielens_dataset="ml-100k", **overrides)


@asynccontextmanager
async def real_service(data_dir: Path, *, read_only: bool = False) -> AsyncIterator[RecommenderService]:
    """Like ``RecommenderService.open`` but with the storage mode chosen by the test, no worker.

    Storage is closed on exit: an open aiosqlite connection is a non-daemon thread that would keep
    pytest from exiting.
    """
    async with Storage(data_dir / "bot.sqlite3", read_only=read_only) as storage:
        movies = await storage.all_movies()
        popularity = await storage.popularity()
        catalog = Catalog(movies, {m: p[2] for m, p in popularity.items()})
        service = RecommenderService(
            storage, catalog, Registry(data_dir / "models"), DATASETS["ml-100k"].scale, popularity=popularity
        )
        await service.reload_model_async()
        try:
            yield service
        finally:
            await service.close()


def dump(db_path: Path) -> list[str]:
    """The database's full content as SQL, read through a separate read-only connection."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@dataclass
class World:
    env: simcord.Env
    channel: Any
    alice: Any
    bob: Any
    admin: Any

    def handled(self) -> list[str]:
        """Errors the bot handled (reading them tells simcord they were expected)."""
        return [type(unwrap(e)).__name__ for e in self.env.errors]


@asynccontextmanager
async def running(service: Any, settings: Settings, **bot_options: Any):
    """The bot on simcord. ``simcord.Env`` directly (as simcord's own pytest fixture does), not
    ``simcord.run``, so that an async fixture may start it and its teardown stop it."""
    env = simcord.Env(create_bot(settings, service, **bot_options))
    await env.start()
    try:
        guild = env.create_guild("Cinema")
        channel = guild.create_text_channel("movies")
        mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        alice = guild.add_member(env.create_user("alice"))
        bob = guild.add_member(env.create_user("bob"))
        admin = guild.add_member(env.create_user("carol"), roles=[mods])
        yield World(env, channel, alice, bob, admin)
    finally:
        await env.shutdown()
    # Errors nobody looked at (through env.errors) fail the test, as simcord.run does on exit.
    env._raise_errors_since(env._errors_acknowledged)


def all_text(result: Any) -> str:
    messages = ([result.response] if result.response is not None else []) + list(result.followups)
    parts = []
    for message in messages:
        parts.append(message.content or "")
        for embed in message.embeds:
            parts += [embed.title or "", embed.description or ""]
            parts += [f"{f.name}: {f.value}" for f in embed.fields]
    return "\n".join(parts)


def is_private(result: Any) -> bool:
    messages = ([result.response] if result.response is not None else []) + list(result.followups)
    return bool(messages) and all(m.ephemeral for m in messages)
