"""``/recommend``, ``/predict`` and ``/similar``: what the model thinks, with buttons under each pick."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import telemetry
from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.cooldowns import LIMITS
from bot.ui import components, render
from bot.ui.filters import FIRST_YEAR, LAST_YEAR, filter_choices, pick_filter
from bot.ui.transformers import MovieTransformer
from recommender.core.types import Movie

log = logging.getLogger(__name__)

RECOMMEND_LIMIT = LIMITS["recommend"]


async def _defer_public(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    interaction.extras["public_defer"] = True  # so an error can replace it with a private message


def recommend_command(bot: MovieBot) -> app_commands.Command[None, ..., None]:
    """``/recommend`` with the genres of the stored catalogue as choices, known only at run time."""

    @app_commands.command(name="recommend")
    @app_commands.describe(
        genre="Only movies of this genre",
        decade="Only movies from this decade",
        since="Only movies from this year on",
        until="Only movies up to this year",
    )
    @app_commands.choices(**filter_choices(bot.service.genres()))
    @per_user_cooldown(*RECOMMEND_LIMIT)
    async def recommend(
        interaction: discord.Interaction,
        genre: str | None = None,
        decade: int | None = None,
        since: app_commands.Range[int, FIRST_YEAR, LAST_YEAR] | None = None,
        until: app_commands.Range[int, FIRST_YEAR, LAST_YEAR] | None = None,
    ) -> None:
        """Five movies you haven't rated that I think you'll like, with buttons to act on each."""
        filters = pick_filter(genre, decade, since, until)  # before deferring: a bad range is private
        await _defer_public(interaction)
        user = interaction.user.id
        recs = await bot.service.recommend(user, k=components.PAGE, filters=filters)
        telemetry.set_path(interaction, recs.path)
        view = components.pick_view(user, recs.picks, filters=filters, skip=0)
        # The poster lookup is bounded by its own short timeout and never raises.
        poster = await bot.service.poster(recs.picks[0].movie) if recs.picks else None
        embed = render.recommend_embed(recs, filters, poster=poster)
        await interaction.followup.send(embed=embed, view=view)

    return recommend


class Recommendations(commands.Cog):
    """Personal picks, predictions and look-alikes."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot
        self.recommend = recommend_command(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.recommend)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.recommend.name)

    @app_commands.command(name="predict")
    @app_commands.describe(movie="The movie: start typing its title and pick it from the list")
    async def predict(
        self, interaction: discord.Interaction, movie: app_commands.Transform[Movie, MovieTransformer]
    ) -> None:
        """How many stars I think you'd give a movie."""
        await _defer_public(interaction)
        prediction = await self.bot.service.predict(interaction.user.id, movie.movie_id)
        telemetry.set_path(interaction, prediction.path)
        poster = await self.bot.service.poster(prediction.movie)
        await interaction.followup.send(embed=render.predict_embed(prediction, poster=poster))

    @app_commands.command(name="similar")
    @app_commands.describe(movie="The movie to find look-alikes for")
    async def similar(
        self, interaction: discord.Interaction, movie: app_commands.Transform[Movie, MovieTransformer]
    ) -> None:
        """Movies similar to one you pick, by what the model learned."""
        await _defer_public(interaction)
        picks = await self.bot.service.similar(movie.movie_id, k=5, user_id=interaction.user.id)
        view = components.pick_view(interaction.user.id, picks)
        poster = await self.bot.service.poster(movie)
        await interaction.followup.send(embed=render.similar_embed(movie, picks, poster=poster), view=view)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Recommendations(bot))
