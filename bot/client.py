"""``MovieBot``: the ``commands.Bot`` that owns the service, the command tree and the retrain loop."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot import gate, health, telemetry
from bot.checks import Cooldowns
from bot.lifecycle import DRAIN_TIMEOUT, WORKER_GRACE, InFlight
from bot.retrain import Retrainer
from bot.ui import components, lists, night_buttons
from recommender.core.config import Settings
from recommender.core.errors import RetrainInProgress
from recommender.pipeline.protocol import Done
from recommender.serving.contract import MovieService

__all__ = ["BACKUP_CHECK_HOURS", "COGS", "RECOVERY_SECONDS", "MovieBot", "MovieTree", "create_bot"]

log = logging.getLogger(__name__)

#: How often the bot looks for a retrain whose process died (one small read of the lock row).
RECOVERY_SECONDS = 15.0
#: How often the bot checks whether the daily SQLite backup is due (it is taken once a day).
BACKUP_CHECK_HOURS = 1.0

COGS = (
    "bot.cogs.ratings",
    "bot.cogs.recommendations",
    "bot.cogs.library",
    "bot.cogs.admin",
    "bot.cogs.catalogue",
    "bot.cogs.movienight",
)


class MovieTree(app_commands.CommandTree):
    """The command tree with the bot's single error handler, rate limits, per-interaction telemetry,
    and the in-flight gate that graceful shutdown drains."""

    async def _call(self, interaction: discord.Interaction) -> None:
        # discord.py runs every command and autocomplete through _call (pinned to discord.py 2.x);
        # wrapping it is the one place that sees each interaction from start to finish.
        bot = self.client
        if not isinstance(bot, MovieBot):
            await super()._call(interaction)
            return
        gate = bot.in_flight
        if not gate.enter():
            await self._refuse_while_stopping(interaction)
            return
        try:
            await super()._call(interaction)
        finally:
            gate.leave()

    async def _refuse_while_stopping(self, interaction: discord.Interaction) -> None:
        command = interaction.command.qualified_name if interaction.command else "?"
        await gate.refuse_while_stopping(interaction, command)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        gate.admit(interaction)  # raises CommandOnCooldown / GuildBusy -> on_error
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        command = interaction.command.qualified_name if interaction.command else "?"
        # "Did you mean" titles come back as buttons that finish the command.
        view = components.suggestion_view(interaction, error)
        await gate.report_error(interaction, error, command, view=view)


class MovieBot(commands.Bot):
    """The bot; it only talks to the ``MovieService`` it is given."""

    def __init__(
        self,
        settings: Settings,
        service: MovieService,
        *,
        sync_commands: bool = True,
        heartbeat_interval: float = health.INTERVAL,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guild/channel/role cache for permission checks; nothing privileged
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=MovieTree,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.service = service
        self.sync_commands = sync_commands
        self.cooldowns = Cooldowns()
        self.interaction_stats = telemetry.InteractionStats()
        self.retrainer = Retrainer(self)
        self.synced_commands: list[app_commands.AppCommand] = []
        self.retrain_loop = tasks.loop(hours=settings.retrain_interval_hours)(self.background_retrain)
        self.retrain_loop.before_loop(self._before_retrain_loop)
        self.in_flight = InFlight()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_path = health.heartbeat_path(settings.data_dir)
        self.gateway_connected = False
        self.heartbeat_loop = tasks.loop(seconds=heartbeat_interval)(self._heartbeat_tick)
        self.recovery_loop = tasks.loop(seconds=RECOVERY_SECONDS)(self._recovery_tick)
        self.recovery_loop.before_loop(self._before_retrain_loop)  # it may post to the admin channel
        self.backup_loop = tasks.loop(hours=BACKUP_CHECK_HOURS)(self._backup_tick)
        self.last_backup: Path | None = None

    async def setup_hook(self) -> None:
        # Buttons under messages sent before a restart are dispatched by their custom_id templates.
        self.add_dynamic_items(*components.DYNAMIC_ITEMS, *lists.LIST_ITEMS, *night_buttons.NIGHT_ITEMS)
        for name in COGS:
            await self.load_extension(name)
        if self.sync_commands:
            await self.sync_tree()
        self.retrain_loop.start()
        self.heartbeat_loop.start()
        self.recovery_loop.start()
        self.backup_loop.start()

    async def sync_tree(self) -> list[app_commands.AppCommand]:
        """Register the commands with Discord: to the dev guild (instant) or globally (up to an hour)."""
        guild_id = self.settings.dev_guild_id
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to dev guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info(
                "synced %d commands globally (Discord may take up to an hour to show changes)", len(synced)
            )
        self.synced_commands = synced
        return synced

    async def on_app_command_completion(
        self, interaction: discord.Interaction, command: app_commands.Command | app_commands.ContextMenu
    ) -> None:
        outcome = interaction.extras.get("outcome", "ok")  # a command may refine it (see /retrain)
        telemetry.finish(interaction, command.qualified_name, outcome, self.interaction_stats)

    async def _before_retrain_loop(self) -> None:
        await self.wait_until_ready()

    async def new_ratings(self) -> int:
        """Member ratings that arrived since the serving model was trained."""
        stats = await self.service.stats()
        return int(stats.ratings_since_training)

    async def background_retrain(self) -> Done | None:
        """One tick of the loop: retrain when enough new ratings arrived, through the same worker.

        The first tick runs right after start-up, so ratings that piled up while the bot was down
        are learned without waiting a whole interval.
        """
        try:
            if self.retrainer.running:
                log.info("background retrain skipped: one is already running")
                return None
            new = await self.new_ratings()
            needed = self.settings.retrain_min_new_ratings
            if new < needed:
                log.info("background retrain skipped: %d new ratings (< %d)", new, needed)
                return None
            return await self.retrainer.run(trigger="schedule", new_ratings=new)
        except RetrainInProgress as exc:
            log.info("background retrain skipped: %s", exc)
            return None
        except Exception:
            # Keep the loop alive: a failed run must not stop future ones.
            log.exception("background retrain failed")
            return None

    async def _recovery_tick(self) -> None:
        # The first tick runs at start-up: a run the previous process left is recorded at once.
        try:
            await self.retrainer.recover()
        except Exception:
            log.exception("checking for an interrupted retrain failed")

    async def _backup_tick(self) -> None:
        """The daily online backup of the SQLite file (a no-op on PostgreSQL), off the event loop."""
        from recommender.persistence.backup import daily_backup

        settings = self.settings
        try:
            made = await asyncio.to_thread(
                daily_backup, settings.storage_location, settings.backup_dir, settings.backup_keep_days
            )
        except Exception:
            # A full disk must not stop the bot; the next tick tries again.
            log.exception("the daily backup failed")
            return
        if made is not None:
            self.last_backup = made

    # -- health ---------------------------------------------------------------------------
    async def on_ready(self) -> None:
        self.gateway_connected = True
        self.beat(reason="ready")

    async def on_resumed(self) -> None:
        self.gateway_connected = True
        self.beat(reason="resumed")

    async def on_disconnect(self) -> None:
        self.gateway_connected = False
        self.beat(reason="disconnected")

    async def _heartbeat_tick(self) -> None:
        self.beat()

    def beat(self, reason: str = "tick", state: str | None = None) -> None:
        """Write the heartbeat file ``python -m bot.health`` reads (see bot/health.py)."""
        if state is None:
            state = "stopping" if self.in_flight.draining else "running"
        try:
            health.write_heartbeat(
                self.heartbeat_path,
                {
                    "pid": os.getpid(),
                    "state": state,
                    "connected": self.gateway_connected and not self.is_closed(),
                    "latency_ms": round(self.latency * 1000, 1),
                    "interval": self.heartbeat_interval,
                    "model_version": self.service.model_version,
                    "retrain_running": self.retrainer.running,
                    "in_flight": self.in_flight.count,
                    "reason": reason,
                },
            )
        except OSError:
            # A full or read-only disk must not take the bot down; the stale file makes the check fail.
            log.warning("could not write the heartbeat file %s", self.heartbeat_path, exc_info=True)

    # -- shutdown -----------------------------------------------------------------------------
    async def shutdown(self, *, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        """Graceful stop: refuse new commands, end a training run, let interactions in flight
        finish, then close the gateway. Storage is closed by whoever opened it, after this."""
        if self.in_flight.draining and self.is_closed():
            return
        began = time.perf_counter()
        self.in_flight.draining = True
        self.beat(reason="shutdown", state="stopping")
        self._cancel_loops()
        try:
            await self.service.stop_training(WORKER_GRACE)
        except Exception:
            log.exception("stopping the training worker failed")
        in_flight = self.in_flight.count
        if not await self.in_flight.drain(drain_timeout):
            log.warning(
                "%d interactions still running after %.0f s; closing anyway",
                self.in_flight.count,
                drain_timeout,
            )
        await self.close()
        self.gateway_connected = False
        self.beat(reason="shutdown complete", state="stopped")
        log.info(
            "bot stopped in %.2f s (%d interactions were in flight)", time.perf_counter() - began, in_flight
        )

    def _cancel_loops(self) -> None:
        for loop in (self.retrain_loop, self.heartbeat_loop, self.recovery_loop, self.backup_loop):
            loop.cancel()

    async def close(self) -> None:
        self._cancel_loops()
        await super().close()


def create_bot(
    settings: Settings,
    service: MovieService,
    *,
    sync_commands: bool = True,
    heartbeat_interval: float = health.INTERVAL,
) -> MovieBot:
    """Build the bot around a service (tests pass a fake or a real service over a temp dir)."""
    return MovieBot(settings, service, sync_commands=sync_commands, heartbeat_interval=heartbeat_interval)
