"""``/rate``, ``/ratings`` and ``/forget``: a member's own ratings."""

from __future__ import annotations

import dataclasses
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import render, telemetry
from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.errors import GENERIC_APOLOGY, describe_error
from bot.lifecycle import SHUTDOWN_MESSAGE
from bot.transformers import MovieTransformer
from recommender.core.types import Movie

log = logging.getLogger(__name__)

RATE_LIMIT = (10, 60.0)  # ten ratings a minute: a burst of catching up, not a script
FORGET_TIMEOUT = 60.0


class ConfirmForget(discord.ui.View):
    """Two buttons under the ``/forget`` prompt; only the member who asked may press them."""

    def __init__(self, bot: MovieBot, owner_id: int, origin: discord.Interaction) -> None:
        super().__init__(timeout=FORGET_TIMEOUT)
        self.bot = bot
        self.owner_id = owner_id
        self.origin = origin
        self.outcome: str | None = None

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if self.bot.in_flight.draining:
            await interaction.response.send_message(SHUTDOWN_MESSAGE, ephemeral=True)
            return False
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the member who asked can answer this.", ephemeral=True
            )
            return False
        return True

    async def _finish(
        self, interaction: discord.Interaction, content: str, action: str, outcome: str
    ) -> None:
        self.outcome = action
        self.stop()
        await interaction.response.edit_message(content=content, view=None)
        telemetry.finish(interaction, f"forget:{action}", outcome, self.bot.interaction_stats)

    @discord.ui.button(label="Delete everything", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        telemetry.start(interaction)
        try:
            deleted = await self.bot.service.forget(interaction.user.id)
        except Exception as error:
            message, outcome, expected = describe_error(error)
            if not expected:
                log.error("forget failed for user %s", interaction.user.id, exc_info=error)
            await self._finish(interaction, message if expected else GENERIC_APOLOGY, "confirm", outcome)
            return
        await self._finish(
            interaction,
            f"Done: I deleted {deleted} rating{'s' if deleted != 1 else ''}. Fresh start!",
            "confirm",
            "ok",
        )

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        telemetry.start(interaction)
        await self._finish(interaction, "Cancelled: nothing was deleted.", "cancel", "ok")

    async def on_timeout(self) -> None:
        self.outcome = "timeout"
        try:
            await self.origin.edit_original_response(
                content="No answer in time: nothing was deleted.", view=None
            )
        except discord.HTTPException:
            log.debug("could not edit the expired /forget prompt", exc_info=True)


class Ratings(commands.Cog):
    """Rate movies, list your ratings, forget them."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot
        scale = bot.scale
        # The option's bounds follow the configured dataset (0.5-5 or 1-5), which is only known at
        # run time; discord.py has no public setter, so replace this cog's copy of the parameter.
        params = self.rate._params
        params["stars"] = dataclasses.replace(
            params["stars"], min_value=scale.minimum, max_value=scale.maximum
        )
        self.rate._params = params

    @app_commands.command(name="rate")
    @app_commands.describe(
        movie="The movie: start typing its title and pick it from the list",
        stars="How many stars you give it, on this server's scale (the step is checked too)",
    )
    @per_user_cooldown(*RATE_LIMIT)
    async def rate(
        self,
        interaction: discord.Interaction,
        movie: app_commands.Transform[Movie, MovieTransformer],
        stars: app_commands.Range[float, 0.5, 5.0],
    ) -> None:
        """Rate a movie you've seen; rating it again updates your rating."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.bot.service.rate(interaction.user.id, movie.movie_id, stars, interaction.guild_id)
        await interaction.followup.send(render.rate_message(result), ephemeral=True)

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

    @app_commands.command(name="forget")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete all your ratings everywhere, after you confirm."""
        view = ConfirmForget(self.bot, interaction.user.id, interaction)
        await interaction.response.send_message(render.forget_prompt(), view=view, ephemeral=True)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Ratings(bot))
