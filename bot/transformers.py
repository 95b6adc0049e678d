"""Option types for the commands: a movie option that autocompletes and resolves to a ``Movie``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands

from recommender.types import Movie

__all__ = ["MAX_CHOICES", "MovieTransformer", "movie_choices", "search_choices"]

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit per autocomplete response
MAX_NAME = 100  # Discord's limit on a choice's name
MAX_QUERY = 200  # longer input is noise; cut it before it reaches the fuzzy matcher


def _choice_name(movie: Movie) -> str:
    name = movie.display
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def movie_choices(service: Any, current: str) -> list[app_commands.Choice[str]]:
    """At most 25 choices whose value is the movie id; never raises (autocomplete ignores errors)."""
    try:
        movies = service.search((current or "")[:MAX_QUERY], limit=MAX_CHOICES)
    except Exception:
        log.exception("autocomplete search failed for %r", current[:80] if current else current)
        return []
    return [app_commands.Choice(name=_choice_name(m), value=str(m.movie_id)) for m in movies[:MAX_CHOICES]]


async def search_choices(service: Any, current: str) -> list[app_commands.Choice[str]]:
    """:func:`movie_choices` in a worker thread: a fuzzy pass over a large catalog can take tens of
    milliseconds of pure Python, which would otherwise stall the event loop (and every other member)."""
    return await asyncio.to_thread(movie_choices, service, current)


class MovieTransformer(app_commands.Transformer):
    """Typed text or a picked suggestion becomes a ``Movie``, or ``UnknownMovie`` with suggestions."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    @property
    def max_value(self) -> int:
        return MAX_QUERY  # for a string option this is its maximum length

    async def transform(self, interaction: discord.Interaction, value: str, /) -> Movie:
        # The service resolves ids (what autocomplete sends), "Title (Year)" and plain titles; a miss
        # runs a fuzzy search for suggestions, so keep it off the event loop like autocomplete.
        service = interaction.client.service  # type: ignore[attr-defined]
        text = str(value)[:MAX_QUERY]
        if text.strip().isdigit():
            return service.resolve(text)  # a dictionary lookup: not worth a thread
        return await asyncio.to_thread(service.resolve, text)

    async def autocomplete(  # type: ignore[override]
        self, interaction: discord.Interaction, value: str, /
    ) -> list[app_commands.Choice[str]]:
        return await search_choices(interaction.client.service, str(value))  # type: ignore[attr-defined]
