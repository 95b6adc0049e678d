"""``/rate``, ``/unrate``, ``/ratings`` and ``/forget``: a member's own ratings."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.cooldowns import LIMITS
from bot.ui import render, words
from bot.ui.transformers import MAX_CHOICES, MovieTransformer
from bot.ui.views import ConfirmForget
from recommender.core.types import Movie, RatingScale

log = logging.getLogger(__name__)

RATE_LIMIT = LIMITS["rate"]


def star_choices(scale: RatingScale) -> list[app_commands.Choice[float]]:
    """Every value the dataset allows, as ``/rate``'s choices (ml-latest-small 10, ml-100k 5)."""
    values = scale.classes
    if len(values) > MAX_CHOICES:
        raise ValueError(f"{len(values)} star values do not fit Discord's {MAX_CHOICES} choices")
    return [app_commands.Choice(name=words.star_choice_name(v), value=float(v)) for v in values]


def rate_command(bot: MovieBot) -> app_commands.Command[None, ..., None]:
    """``/rate`` with its stars offered as the scale's values, which are known only at run time."""

    @app_commands.command(name="rate")
    @app_commands.describe(
        movie="The movie: start typing its title and pick it from the list",
        stars="How many stars you give it, on this server's scale",
    )
    @app_commands.choices(stars=star_choices(bot.service.scale))
    @per_user_cooldown(*RATE_LIMIT)
    async def rate(
        interaction: discord.Interaction,
        movie: app_commands.Transform[Movie, MovieTransformer],
        stars: float,
    ) -> None:
        """Rate a movie you've seen; rating it again updates your rating."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.service.rate(interaction.user.id, movie.movie_id, stars, interaction.guild_id)
        await interaction.followup.send(render.rate_message(result), ephemeral=True)

    return rate


class Ratings(commands.Cog):
    """Rate movies, list your ratings, forget them."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot
        self.rate = rate_command(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.rate)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.rate.name)

    @app_commands.command(name="ratings")
    @app_commands.describe(page="Which page of your ratings to show (10 per page, newest first)")
    async def ratings(
        self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        """Show your ratings (only you can see them)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = await self.bot.service.ratings(interaction.user.id)
        pages = render.ratings_pages(len(rows))
        if page < 1:  # Discord enforces the option's minimum; a stale or forged payload may not
            await interaction.followup.send("Pages start at 1.", ephemeral=True)
            return
        if page > pages:
            await interaction.followup.send(
                f"You only have {pages} page{'s' if pages != 1 else ''} of ratings.", ephemeral=True
            )
            return
        embed = render.ratings_embed(rows, page, interaction.user.display_name)
        await interaction.followup.send(embed=embed, ephemeral=True)

    @app_commands.command(name="unrate")
    @app_commands.describe(movie="The movie whose rating you want to remove")
    async def unrate(
        self, interaction: discord.Interaction, movie: app_commands.Transform[Movie, MovieTransformer]
    ) -> None:
        """Remove your rating of one movie."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.service.unrate(interaction.user.id, movie.movie_id)
        await interaction.followup.send(words.unrate_text(movie, removed), ephemeral=True)

    @app_commands.command(name="forget")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete all your ratings everywhere, after you confirm."""
        n = len(await self.bot.service.ratings(interaction.user.id))
        if not n:
            await interaction.response.send_message("You have no ratings to delete.", ephemeral=True)
            return
        view = ConfirmForget(self.bot, interaction.user.id, interaction)
        await interaction.response.send_message(render.forget_prompt(n), view=view, ephemeral=True)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Ratings(bot))
