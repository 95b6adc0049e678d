"""Option types for the commands: a movie option that autocompletes and resolves to a ``Movie``."""

from __future__ import annotations

import asyncio
import logging
import re

import discord
from discord import app_commands

from bot import telemetry
from bot.protocols import BotState
from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.serving.contract import MovieService

__all__ = ["ID_PREFIX", "MAX_CHOICES", "MovieTransformer", "choice_value", "movie_choices", "search_choices"]

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit per autocomplete response
MAX_NAME = 100  # Discord's limit on a choice's name
MAX_QUERY = 200  # longer input is noise; cut it before it reaches the fuzzy matcher
#: Autocomplete values are "id:<movie id>", so that a member who types "300" by hand means the film
#: "300", not movie id 300. Anything without the prefix is resolved as text.
ID_PREFIX = "id:"
_ID_VALUE = re.compile(r"id:([0-9]{1,18})")


def choice_value(movie: Movie) -> str:
    return f"{ID_PREFIX}{movie.movie_id}"


def _choice_name(movie: Movie) -> str:
    name = movie.display  # the service already shortened the title so the year stays
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def movie_choices(service: MovieService, current: str) -> list[app_commands.Choice[str]]:
    """At most 25 choices whose value is ``id:<movie id>``; raises what the search raises."""
    movies = service.search((current or "")[:MAX_QUERY], MAX_CHOICES, max_len=MAX_NAME)
    return [app_commands.Choice(name=_choice_name(m), value=choice_value(m)) for m in movies[:MAX_CHOICES]]


async def search_choices(service: MovieService, current: str) -> list[app_commands.Choice[str]]:
    """:func:`movie_choices` in a worker thread: a fuzzy pass over a large catalog can take tens of
    milliseconds of pure Python, which would otherwise stall the event loop (and every other member)."""
    return await asyncio.to_thread(movie_choices, service, current)


def resolve_digits_as_title(service: MovieService, text: str) -> Movie:
    """Typed digits are a title ("300", "1917"): the catalog's resolve would read them as an id."""
    found = service.search(text, MAX_CHOICES)
    exact = [m for m in found if m.title.casefold() == text.casefold()]
    if len(exact) == 1:
        return _by_id(service, exact[0].movie_id, text)
    raise UnknownMovie(text, exact or found[:5])


def _by_id(service: MovieService, movie_id: int, shown: str) -> Movie:
    movie = service.resolve(str(movie_id))  # all digits: the catalog looks the id up first
    if movie.movie_id != movie_id:  # the id is gone (another dataset); resolve fell back to titles
        raise UnknownMovie(shown)
    return movie


def _service(interaction: discord.Interaction) -> MovieService:
    client = interaction.client
    if not isinstance(client, BotState):
        raise TypeError("MovieTransformer runs only on the movie bot")
    return client.service


class MovieTransformer(app_commands.Transformer):
    """Typed text or a picked suggestion becomes a ``Movie``, or ``UnknownMovie`` with suggestions."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    @property
    def max_value(self) -> int:
        return MAX_QUERY  # for a string option this is its maximum length

    @staticmethod
    def resolve_now(service: MovieService, value: str) -> Movie:
        """What :meth:`transform` does, synchronously (for tests and tools)."""
        text = str(value)[:MAX_QUERY].strip()
        if picked := _ID_VALUE.fullmatch(text):
            return _by_id(service, int(picked.group(1)), text)
        if text.isdigit():
            return resolve_digits_as_title(service, text)
        return service.resolve(text)

    async def transform(self, interaction: discord.Interaction, value: str, /) -> Movie:
        # The service resolves ids (what autocomplete sends), "Title (Year)" and plain titles; a miss
        # runs a fuzzy search for suggestions, so keep it off the event loop like autocomplete.
        service = _service(interaction)
        text = str(value)[:MAX_QUERY].strip()
        if picked := _ID_VALUE.fullmatch(text):
            return _by_id(service, int(picked.group(1)), text)  # a dictionary lookup: not worth a thread
        if text.isdigit():
            return await asyncio.to_thread(resolve_digits_as_title, service, text)
        return await asyncio.to_thread(service.resolve, text)

    async def autocomplete(  # type: ignore[override]
        self, interaction: discord.Interaction, value: str, /
    ) -> list[app_commands.Choice[str]]:
        """Never raises: discord.py would swallow the error and the member would see no list at all."""
        client = interaction.client
        command = interaction.command.qualified_name if interaction.command else "?"
        if not isinstance(client, BotState):
            return []
        stats = client.interaction_stats
        try:
            choices = await search_choices(client.service, str(value))
        except Exception as error:
            # Every keystroke autocompletes: a broken search would flood the log at ERROR level, so
            # the traceback goes to DEBUG and /stats counts the failures.
            log.debug("autocomplete search failed for %r", str(value)[:80], exc_info=True)
            telemetry.autocomplete_done(interaction, command, f"bug:{type(error).__name__}", 0, stats)
            return []
        telemetry.autocomplete_done(interaction, command, "ok", len(choices), stats)
        return choices
