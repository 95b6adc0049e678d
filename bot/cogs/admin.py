"""Admin commands: ``/retrain`` and ``/stats`` (Manage Server or the admin role; guild only)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import admin_only
from bot.client import MovieBot
from bot.ui import reports, words
from recommender.core.errors import RetrainInProgress, RetrainRunningElsewhere

__all__ = ["Admin"]

log = logging.getLogger(__name__)


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
        retrainer = self.bot.retrainer
        if (run := retrainer.join(interaction)) is not None:
            # This process trains and will answer this interaction too: only then is it promised.
            await interaction.response.send_message(words.retrain_joined(run.trigger, run.started))
            interaction.extras["outcome"] = "ok:joined"
            return
        await interaction.response.defer(thinking=True)
        interaction.extras["public_defer"] = True
        await self._recover()
        try:
            # Not forced: a run that is worse than the serving model is reported, not published.
            result = await retrainer.run(trigger=f"admin:{interaction.user.id}", interaction=interaction)
        except RetrainRunningElsewhere as exc:
            text = words.retrain_elsewhere(
                exc.pid, exc.host, exc.since, exc.trigger, self.bot.settings.admin_channel_id
            )
            await interaction.edit_original_response(content=text)
            interaction.extras["outcome"] = "ok:elsewhere"
            return
        except RetrainInProgress:
            # another /retrain started one while this one was being acknowledged
            if (run := retrainer.join(interaction)) is None:
                raise
            await interaction.edit_original_response(content=words.retrain_joined(run.trigger, run.started))
            interaction.extras["outcome"] = "ok:joined"
            return
        if not result.published:
            failed = not result.ok or not result.version
            interaction.extras["outcome"] = "failed:retrain" if failed else "ok:not_published"

    @app_commands.command(name="stats")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        """The serving model's figures, the last retrain, ratings, members and interactions."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._recover()
        service = self.bot.service
        stats = await service.stats()
        counters = self.bot.interaction_stats
        embed = reports.stats_embed(
            stats,
            interactions=counters.summary(),
            by_command=counters.by_command(),
            autocomplete=dict(counters.autocomplete),
            last_retrain=await service.last_retrain(),
            holder=await service.retrain_holder(),
        )
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def _recover(self) -> None:
        # The recovery loop does this every few seconds; asking first makes the answer current.
        try:
            await self.bot.retrainer.recover()
        except Exception:
            log.exception("checking for an interrupted retrain failed")


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(Admin(bot))
