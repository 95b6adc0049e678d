"""The one path every member interaction takes, slash command or button alike.

``MovieTree`` (commands) and :func:`run_component` (buttons and selects under the bot's messages)
both use these: refuse while shutting down, count the member's and the server's budgets, log one
telemetry line, and turn any failure into one private message through ``describe_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from bot import telemetry
from bot.checks import check_rate_limits
from bot.errors import NotYourList, describe_error, send_ephemeral
from bot.lifecycle import SHUTDOWN_MESSAGE
from bot.protocols import BotState

__all__ = ["Action", "admit", "refuse_while_stopping", "report_error", "run_component"]

log = logging.getLogger(__name__)

#: What a button or select does once the interaction is admitted.
Action = Callable[[discord.Interaction], Awaitable[None]]


def _stats(interaction: discord.Interaction) -> telemetry.InteractionStats | None:
    client = interaction.client
    return client.interaction_stats if isinstance(client, BotState) else None


def admit(interaction: discord.Interaction) -> None:
    """Start the telemetry clock and spend one unit of the member's and the server's budgets;
    raises ``CommandOnCooldown`` / ``GuildBusy``."""
    telemetry.start(interaction)
    if interaction.type is not discord.InteractionType.autocomplete:
        check_rate_limits(interaction)


async def refuse_while_stopping(interaction: discord.Interaction, name: str) -> None:
    telemetry.start(interaction)
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
            return
        await interaction.response.send_message(SHUTDOWN_MESSAGE, ephemeral=True)
    except discord.HTTPException:
        log.debug("could not answer an interaction during shutdown", exc_info=True)
    finally:
        if interaction.type is not discord.InteractionType.autocomplete:
            telemetry.finish(interaction, name, "shutting_down", _stats(interaction))


async def report_error(
    interaction: discord.Interaction,
    error: BaseException,
    name: str,
    *,
    view: discord.ui.View | None = None,
) -> None:
    """Log ``error`` (with its traceback when it is a bug), tell the member privately, count it."""
    message, outcome, expected = describe_error(error)
    label = f"command /{name}" if interaction.type is discord.InteractionType.application_command else name
    if expected:
        log.info("%s refused for user %s: %s", label, interaction.user.id, outcome)
    else:
        log.error("%s failed for user %s", label, interaction.user.id, exc_info=error)
    try:
        await send_ephemeral(interaction, message, view=view)
    except discord.HTTPException:
        # The interaction may have expired; the log line above is all we can still do.
        log.warning("could not tell user %s about an error in %s", interaction.user.id, label)
    telemetry.finish(interaction, name, outcome, _stats(interaction))


def _spend_cooldown(interaction: discord.Interaction, cooldown: tuple[str, int, float] | None) -> None:
    client = interaction.client
    if cooldown is None or not isinstance(client, BotState):
        return
    bucket, rate, per = cooldown
    retry_after = client.cooldowns.hit(bucket, interaction.user.id, rate, per)
    if retry_after is not None:
        raise app_commands.CommandOnCooldown(app_commands.Cooldown(rate, per), retry_after)


async def run_component(
    interaction: discord.Interaction,
    name: str,
    action: Action,
    *,
    owner_id: int | None,
    cooldown: tuple[str, int, float] | None = None,
) -> None:
    """Run one button or select press the way ``MovieTree`` runs a command.

    ``owner_id``: only this member may press it (None: anyone). ``cooldown``: the per-member bucket
    of the command the press stands for (``("recommend", 3, 30.0)``), shared with that command.
    """
    client = interaction.client
    gate = client.in_flight if isinstance(client, BotState) else None
    if gate is not None and not gate.enter():
        await refuse_while_stopping(interaction, name)
        return
    try:
        admit(interaction)
        if owner_id is not None and interaction.user.id != owner_id:
            raise NotYourList()
        _spend_cooldown(interaction, cooldown)
        await action(interaction)
    except Exception as error:
        await report_error(interaction, error, name)
    else:
        telemetry.finish(interaction, name, interaction.extras.get("outcome", "ok"), _stats(interaction))
    finally:
        if gate is not None:
            gate.leave()
