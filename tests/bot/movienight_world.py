"""A simcord world for movie-night tests over the REAL service, storage and a real ServingModel.

Members are created first so the model can be trained on some of them: in the tiny catalogue of
``tests/recommender/serving/service_fakes.py`` cluster A is the most popular and cluster B the
least, so a pick from cluster B proves a member's own taste was used.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simcord

from bot.client import MovieBot, create_bot
from recommender.core.config import Settings
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.service import RecommenderService
from tests.bot.test_components import custom_ids
from tests.recommender.serving.service_fakes import HALF, make_model, movies, popularity, publish

LONG_AGO = time.time() - 7200  # before the model below was trained


async def open_service(folder: Path) -> RecommenderService:
    storage = await Storage(folder / "bot.sqlite3").open()
    await storage.load_catalog("ml-latest-small", movies(), popularity())
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[0] for m, p in popularity().items()}),
        Registry(folder / "models"),
        HALF,
        popularity=popularity(),
        reload_check_seconds=3600.0,
    )
    service.reload_model()
    return service


async def close(service: RecommenderService) -> None:
    await service.close()
    await service.storage.close()


@dataclass
class Night:
    env: Any
    folder: Path
    settings: Settings
    service: RecommenderService
    channel: Any
    host: Any
    members: list[Any]  # bob, carol, dan, ... (not in the night until they press I'm in)

    @property
    def bot(self) -> MovieBot:
        return self.env.bot

    async def train(self, trained: dict[Any, list[int]]) -> None:
        """Publish a model trained on these members' tastes, after every rating they made so far."""
        for member, liked in trained.items():
            for movie_id in liked[:2]:
                await self.service.storage.upsert_rating(member.id, movie_id, 5.0, None, rated_at=LONG_AGO)
        model = make_model("v1", trained_members={m.id: liked for m, liked in trained.items()})
        publish(Registry(self.folder / "models"), model)
        self.service.reload_model()

    async def restart(self) -> None:
        """A new bot over a new service and the same database and models, as after a restart."""
        await close(self.service)
        self.service = await open_service(self.folder)
        await self.env.restart_bot(create_bot(self.settings, self.service))


@asynccontextmanager
async def movie_night_world(tmp_path: Path, n_members: int = 4, **settings: Any) -> AsyncIterator[Night]:
    config = Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small", **settings)
    service = await open_service(tmp_path)
    world: Night | None = None
    try:
        async with simcord.run(create_bot(config, service)) as env:
            guild = env.create_guild("Cinema")
            channel = guild.create_text_channel("movies")
            users = [guild.add_member(env.create_user(f"member{i}")) for i in range(n_members + 1)]
            world = Night(env, tmp_path, config, service, channel, users[0], users[1:])
            yield world
    finally:
        await close(world.service if world is not None else service)


def night_id_of(message: Any) -> int:
    """The night a card belongs to, read from its buttons."""
    [night] = {int(cid.split(":")[2]) for cid in custom_ids(message) if cid.startswith("mn:")}
    return night


def buttons(message: Any) -> list[str]:
    """The card's button actions, in order (``join``, ``leave``, ``pick``, ``poll``, ``reroll``)."""
    return [cid.split(":")[1] for cid in custom_ids(message) if cid.startswith("mn:")]


def pick_titles(embed: Any) -> list[str]:
    return [re.sub(r"^\d+\. ", "", field.name) for field in embed.fields]


def stars_by_member(field_value: str) -> dict[int, str]:
    """``<@1> 4.5★ · <@2> 3.9★`` -> {1: "4.5★", 2: "3.9★"}."""
    return {int(u): s for u, s in re.findall(r"<@(\d+)> ([0-9.]+★)", field_value)}
