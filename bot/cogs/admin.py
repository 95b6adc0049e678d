"""Admin commands: ``/retrain`` and ``/stats`` (Manage Server or the admin role; guild only)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import admin_only
from bot.client import MovieBot
from bot.ui import render
from recommender.core.errors import RetrainInProgress
from recommender.pipeline.protocol import Done, Event

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between edits: Discord rate-limits message edits


class ProgressReporter:
    """Edits the deferred reply as epochs finish, at most once per ``interval`` seconds."""

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interaction = interaction
        self.interval = interval
        self.clock = clock
        self.last_edit: float | None = None
        self.edits = 0
        self.events = 0

    async def __call__(self, event: Event) -> None:
        self.events += 1
        if isinstance(event, Done):
            return  # the final message is written by the command
        now = self.clock()
        if self.last_edit is not None and now - self.last_edit < self.interval:
            return
        self.last_edit = now
        try:
            await self.interaction.edit_original_response(content=render.retrain_progress(event))
            self.edits += 1
        except discord.HTTPException:
            # Progress is a courtesy: a failed edit must not abort the training run.
            log.warning("could not edit /retrain progress", exc_info=True)


class Admin(commands.Cog):
    """Model maintenance for server admins."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot

    @app_commands.command(name="retrain")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Retrain the model now on all ratings, and publish it if it is good enough."""
        if self.bot.retrainer.running:
            raise RetrainInProgress()
        await interaction.response.defer(thinking=True)
        interaction.extras["public_defer"] = True
        progress = ProgressReporter(interaction)
        # Not forced: a run that is worse than the serving model is reported, not published.
        result = await self.bot.retrainer.run(
            progress, force=False, trigger=f"/retrain by {interaction.user.id}"
        )
        if not result.published:
            failed = not result.ok or not result.version
            interaction.extras["outcome"] = "failed:retrain" if failed else "ok:not_published"
        embed = render.retrain_result_embed(result)
        files: list[discord.File] = []
        plot = result.plot
        if plot:
            try:
                files.append(discord.File(plot, filename="loss.png"))
                embed.set_image(url="attachment://loss.png")
            except OSError:
                log.warning("retrain result names a loss curve that can't be read: %s", plot)
        await interaction.edit_original_response(content=None, embed=embed, attachments=files)

    @app_commands.command(name="stats")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        """Ratings, members, the serving model, its metrics and when it was trained."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        stats = await self.bot.service.stats()
        counters = self.bot.interaction_stats
        embed = render.stats_embed(
            stats,
            interactions=counters.summary(),
            by_command=counters.by_command(),
            autocomplete=dict(counters.autocomplete),
            last_retrain=self.bot.retrainer.last_result,
            last_retrain_at=self.bot.retrainer.last_finished,
        )
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Admin(bot))
