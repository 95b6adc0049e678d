"""``/import``, ``/export``, ``/watchlist`` and ``/hidden``: bringing, taking and keeping lists.

All private (ephemeral): a member's history is theirs.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.cooldowns import LIMITS
from bot.ui import lists, words
from recommender.data.csvsafe import csv_bytes
from recommender.data.imports import MAX_BYTES, RejectCode
from recommender.serving.contract import ImportRefused

log = logging.getLogger(__name__)

EXPORT_HEADER = ("movieId", "title", "year", "rating", "timestamp", "rated_on", "imdbId", "tmdbId")


class Library(commands.Cog):
    """Import a history, export your ratings, and your watchlist and hidden movies."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot

    @app_commands.command(name="import")
    @app_commands.describe(
        file="Letterboxd ratings.csv or diary.csv, IMDb's ratings export, or a movieId,rating CSV"
    )
    @per_user_cooldown(*LIMITS["import"])
    async def import_file(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Bring the ratings you made elsewhere (Letterboxd, IMDb, MovieLens); only you see the result."""
        if file.size > MAX_BYTES:  # refused before a byte is downloaded
            raise ImportRefused(RejectCode.TOO_LARGE, f"attachment of {file.size:,} bytes")
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        summary = await self.bot.service.import_ratings(interaction.user.id, data, interaction.guild_id)
        whole = self.bot.service.scale.step >= 1
        files = []
        if summary.unmatched_csv:
            files.append(discord.File(io.BytesIO(summary.unmatched_csv), filename="not-imported.csv"))
        await interaction.followup.send(words.import_done(summary, whole), files=files, ephemeral=True)

    @app_commands.command(name="export")
    async def export(self, interaction: discord.Interaction) -> None:
        """Download your ratings as a CSV file (only you see it)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = await self.bot.service.ratings(interaction.user.id)
        if not rows:
            await interaction.followup.send(words.export_text(0), ephemeral=True)
            return
        table = (
            (
                movie.movie_id,
                movie.title,
                movie.year or "",
                f"{rating.stars:g}",
                int(rating.rated_at),
                datetime.fromtimestamp(rating.rated_at, tz=UTC).date().isoformat(),
                f"tt{movie.imdb_id:07d}" if movie.imdb_id else "",
                movie.tmdb_id or "",
            )
            for movie, rating in rows
        )
        file = discord.File(io.BytesIO(csv_bytes(EXPORT_HEADER, table)), filename="my-ratings.csv")
        await interaction.followup.send(words.export_text(len(rows)), file=file, ephemeral=True)

    @app_commands.command(name="watchlist")
    async def watchlist(self, interaction: discord.Interaction) -> None:
        """The movies you saved for later; pick some to take them off."""
        movies = await self.bot.service.watchlist(interaction.user.id)
        embed, view = lists.list_message("watchlist", interaction.user.id, movies)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="hidden")
    async def hidden(self, interaction: discord.Interaction) -> None:
        """The movies you marked "Not interested"; pick some to have them recommended again."""
        movies = await self.bot.service.hidden(interaction.user.id)
        embed, view = lists.list_message("hidden", interaction.user.id, movies)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Library(bot))
