"""``/recommend``, ``/predict`` and ``/similar``: what the model thinks."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import telemetry
from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.ui import render
from bot.ui.transformers import MovieTransformer
from recommender.core.types import Movie

log = logging.getLogger(__name__)

RECOMMEND_LIMIT = (3, 30.0)  # scoring every movie is the costliest thing a member can ask for


async def _defer_public(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    interaction.extras["public_defer"] = True  # so an error can replace it with a private message


class Recommendations(commands.Cog):
    """Personal picks, predictions and look-alikes."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot

    @app_commands.command(name="recommend")
    @per_user_cooldown(*RECOMMEND_LIMIT)
    async def recommend(self, interaction: discord.Interaction) -> None:
        """Five movies you haven't rated that I think you'll like."""
        await _defer_public(interaction)
        recs = await self.bot.service.recommend(interaction.user.id, k=5)
        telemetry.set_path(interaction, recs.path)
        await interaction.followup.send(embed=render.recommend_embed(recs))

    @app_commands.command(name="predict")
    @app_commands.describe(movie="The movie: start typing its title and pick it from the list")
    async def predict(
        self, interaction: discord.Interaction, movie: app_commands.Transform[Movie, MovieTransformer]
    ) -> None:
        """How many stars I think you'd give a movie."""
        await _defer_public(interaction)
        prediction = await self.bot.service.predict(interaction.user.id, movie.movie_id)
        telemetry.set_path(interaction, prediction.path)
        await interaction.followup.send(embed=render.predict_embed(prediction))

    @app_commands.command(name="similar")
    @app_commands.describe(movie="The movie to find look-alikes for")
    async def similar(
        self, interaction: discord.Interaction, movie: app_commands.Transform[Movie, MovieTransformer]
    ) -> None:
        """Movies similar to one you pick, by what the model learned."""
        await _defer_public(interaction)
        picks = await self.bot.service.similar(movie.movie_id, k=5)
        await interaction.followup.send(embed=render.similar_embed(movie, picks))


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Recommendations(bot))
