"""The select under ``/watchlist`` and ``/hidden``: the chosen movies leave the list.

Persistent like every item in :mod:`bot.ui.components` (``lst:<kind>:<owner>``, the movie ids are
the options' values), and pressed through the same gate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bot.ui import render, words
from bot.ui.components import MAX_OPTIONS, OWNER, Owned, service_of, short_name
from recommender.core.types import Movie
from recommender.serving.contract import MovieService

__all__ = ["LIST_ITEMS", "UnhideSelect", "UnwatchSelect", "list_message"]


class _ListSelect(Owned, discord.ui.DynamicItem[discord.ui.Select], template=r"lst:_:_"):
    """A select of a member's watchlist or hidden movies: the chosen ones leave the list."""

    kind = "_"

    def __init__(self, owner_id: int, options: Sequence[discord.SelectOption]) -> None:
        self.owner_id, self.name = owner_id, f"lst:{self.kind}"
        select = discord.ui.Select(
            custom_id=f"lst:{self.kind}:{owner_id}",
            placeholder=words.LIST_PLACEHOLDERS[self.kind],
            options=list(options),
            max_values=max(1, len(options)),
        )
        super().__init__(select)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Select, match: re.Match[str], /
    ) -> Any:
        return cls(int(match["owner"]), item.options)

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._run(interaction, self.act)

    async def act(self, interaction: discord.Interaction) -> None:
        service = service_of(interaction)
        chosen = [int(v) for v in self.item.values if v.isascii() and v.isdigit() and len(v) <= 18]
        for movie_id in chosen:
            await self.remove(service, movie_id)
        movies = await self.remaining(service)
        embed, view = list_message(self.kind, self.owner_id, movies)
        await interaction.response.edit_message(
            content=words.list_removed(self.kind, len(chosen)), embed=embed, view=view
        )

    async def remove(self, service: MovieService, movie_id: int) -> bool:
        raise NotImplementedError

    async def remaining(self, service: MovieService) -> list[Movie]:
        raise NotImplementedError


class UnhideSelect(_ListSelect, template=rf"lst:hidden:{OWNER}"):
    kind = "hidden"

    async def remove(self, service: MovieService, movie_id: int) -> bool:
        return await service.unhide(self.owner_id, movie_id)

    async def remaining(self, service: MovieService) -> list[Movie]:
        return await service.hidden(self.owner_id)


class UnwatchSelect(_ListSelect, template=rf"lst:watchlist:{OWNER}"):
    kind = "watchlist"

    async def remove(self, service: MovieService, movie_id: int) -> bool:
        return await service.remove_from_watchlist(self.owner_id, movie_id)

    async def remaining(self, service: MovieService) -> list[Movie]:
        return await service.watchlist(self.owner_id)


LIST_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (UnhideSelect, UnwatchSelect)


def list_message(kind: str, owner_id: int, movies: Sequence[Movie]) -> tuple[discord.Embed, discord.ui.View]:
    """The watchlist or hidden movies, and a select to take movies off it."""
    embed = render.movie_list_embed(words.LIST_TITLES[kind], movies, words.LIST_EMPTY[kind])
    view = discord.ui.View(timeout=None)
    if movies:
        options = [
            discord.SelectOption(label=short_name(m, 100), value=str(m.movie_id))
            for m in movies[:MAX_OPTIONS]
        ]
        view.add_item((UnhideSelect if kind == "hidden" else UnwatchSelect)(owner_id, options))
    return embed, view
