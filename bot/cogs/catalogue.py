"""Admin commands for movies newer than the dataset: ``/addmovie``, ``/editmovie``, ``/removemovie``.

Admins only (Manage Server or the admin role; guild only), like ``/retrain``. Every answer is
private to the admin. Details are checked by the service (``InvalidMovieDetails``, one message);
edit and remove only ever touch movies added here, never a dataset movie.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import admin_only
from bot.client import MovieBot
from bot.errors import GENERIC_APOLOGY, describe_error
from bot.protocols import BotState
from bot.ui import words
from bot.ui.transformers import ID_PREFIX, MAX_CHOICES, MAX_NAME
from recommender.core.errors import NotAddedMovie, UnknownMovie
from recommender.core.types import Movie
from recommender.serving.contract import MovieService

__all__ = ["REMOVE_TIMEOUT", "Catalogue", "ConfirmRemove", "added_choices", "genre_choices"]

log = logging.getLogger(__name__)

REMOVE_TIMEOUT = 60.0


def genre_choices(service: MovieService, current: str) -> list[app_commands.Choice[str]]:
    """Completes the last of the comma-separated genres typed so far."""
    typed = (current or "")[:200].split(",")
    done = [g.strip() for g in typed[:-1] if g.strip()]
    last = typed[-1].strip().casefold()
    chosen = {g.casefold() for g in done}
    out = []
    for genre in service.genres():
        if genre.casefold() in chosen or not genre.casefold().startswith(last):
            continue
        value = ", ".join([*done, genre])
        if len(value) <= MAX_NAME:
            out.append(app_commands.Choice(name=value, value=value))
    return out[:MAX_CHOICES]


def added_choices(service: MovieService, current: str) -> list[app_commands.Choice[str]]:
    """Only movies admins added: edit and remove never offer a dataset movie."""
    needle = (current or "").strip().casefold()
    found = [m for m in service.added_movies() if needle in m.display.casefold()]
    return [
        app_commands.Choice(name=m.display[:MAX_NAME], value=f"{ID_PREFIX}{m.movie_id}")
        for m in found[-MAX_CHOICES:][::-1]  # newest first: the one added by mistake is usually recent
    ]


def resolve_added(service: MovieService, text: str) -> Movie:
    """An ``id:<n>`` from autocomplete, an id, or the title of an added movie; else ``UnknownMovie``.
    A dataset movie's id resolves too, so that the service can say it may not be changed."""
    raw = (text or "").strip()
    digits = raw.removeprefix(ID_PREFIX)
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        try:
            return service.resolve(digits)
        except UnknownMovie:
            if raw.startswith(ID_PREFIX):
                raise
    added = service.added_movies()
    exact = [m for m in added if raw.casefold() in (m.title.casefold(), m.display.casefold())]
    if len(exact) == 1:
        return exact[0]
    raise UnknownMovie(raw, exact or [m for m in added if raw.casefold()[:4] in m.title.casefold()][:5])


async def _genres_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    client = interaction.client
    return genre_choices(client.service, current) if isinstance(client, BotState) else []


async def _added_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    client = interaction.client
    return added_choices(client.service, current) if isinstance(client, BotState) else []


class ConfirmRemove(discord.ui.View):
    """Remove / Cancel under the ``/removemovie`` prompt; only the admin who asked may answer."""

    def __init__(self, bot: BotState, owner_id: int, movie: Movie, origin: discord.Interaction) -> None:
        super().__init__(timeout=REMOVE_TIMEOUT)
        self.bot, self.owner_id, self.movie, self.origin = bot, owner_id, movie, origin

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the admin who asked can answer this.", ephemeral=True
            )
            return False
        return True

    @discord.ui.button(label="Remove it", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        self.stop()
        try:
            kept = await self.bot.service.remove_movie(self.movie.movie_id, removed_by=interaction.user.id)
            text = words.movie_removed(self.movie, kept)
        except Exception as error:
            text, _outcome, expected = describe_error(error)
            if not expected:
                log.error("removing movie %s failed", self.movie.movie_id, exc_info=error)
                text = GENERIC_APOLOGY
        await interaction.response.edit_message(content=text, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Cancelled: nothing was removed.", view=None)

    async def on_timeout(self) -> None:
        try:
            await self.origin.edit_original_response(
                content="No answer in time: nothing was removed.", view=None
            )
        except discord.HTTPException:
            log.debug("could not edit the expired /removemovie prompt", exc_info=True)


class Catalogue(commands.Cog):
    """Movies newer than the dataset, added by server admins."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot

    @app_commands.command(name="addmovie")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    @app_commands.describe(
        title="the movie's title, e.g. Dune: Part Two",
        year="the year it came out (1870 to next year)",
        genres="comma-separated genres of the dataset, e.g. Action, Sci-Fi",
        imdb="optional IMDb id: tt15239678 or just the digits",
    )
    @app_commands.autocomplete(genres=_genres_autocomplete)
    async def addmovie(
        self,
        interaction: discord.Interaction,
        title: app_commands.Range[str, 1, 200],
        year: int,
        genres: str,
        imdb: str | None = None,
    ) -> None:
        """Add a movie newer than the dataset; members can rate it at once."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        movie = await self.bot.service.add_movie(title, year, genres, imdb, added_by=interaction.user.id)
        await interaction.followup.send(words.movie_added(movie), ephemeral=True)

    @app_commands.command(name="editmovie")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    @app_commands.describe(
        movie="a movie added with /addmovie",
        title="the corrected title",
        year="the corrected year",
        genres="the corrected genres, comma-separated",
        imdb="the corrected IMDb id",
    )
    @app_commands.autocomplete(movie=_added_autocomplete, genres=_genres_autocomplete)
    async def editmovie(
        self,
        interaction: discord.Interaction,
        movie: str,
        title: app_commands.Range[str, 1, 200] | None = None,
        year: int | None = None,
        genres: str | None = None,
        imdb: str | None = None,
    ) -> None:
        """Correct a movie added with /addmovie (title, year, genres or IMDb id)."""
        target = resolve_added(self.bot.service, movie)
        await interaction.response.defer(ephemeral=True, thinking=True)
        edited = await self.bot.service.edit_movie(
            target.movie_id,
            title=title,
            year=year,
            genres=genres,
            imdb_id=imdb,
            edited_by=interaction.user.id,
        )
        await interaction.followup.send(words.movie_edited(edited), ephemeral=True)

    @app_commands.command(name="removemovie")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    @app_commands.describe(movie="a movie added with /addmovie by mistake")
    @app_commands.autocomplete(movie=_added_autocomplete)
    async def removemovie(self, interaction: discord.Interaction, movie: str) -> None:
        """Remove a movie added by mistake, after a confirmation; its ratings are kept aside."""
        service = self.bot.service
        target = resolve_added(service, movie)
        if target.movie_id not in {m.movie_id for m in service.added_movies()}:
            # the same refusal the service gives, before asking to confirm something impossible
            raise NotAddedMovie(target)
        view = ConfirmRemove(self.bot, interaction.user.id, target, interaction)
        await interaction.response.send_message(words.remove_prompt(target), view=view, ephemeral=True)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Catalogue(bot))
