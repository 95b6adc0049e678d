"""Views under the bot's messages: the ``/forget`` confirmation."""

from __future__ import annotations

import logging

import discord

from bot import telemetry
from bot.errors import GENERIC_APOLOGY, describe_error
from bot.lifecycle import SHUTDOWN_MESSAGE
from bot.protocols import BotState
from bot.ui import words

__all__ = ["FORGET_TIMEOUT", "ConfirmForget"]

log = logging.getLogger(__name__)

FORGET_TIMEOUT = 60.0


class ConfirmForget(discord.ui.View):
    """Two buttons under the ``/forget`` prompt; only the member who asked may press them."""

    def __init__(self, bot: BotState, owner_id: int, origin: discord.Interaction) -> None:
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
        await self._finish(interaction, words.forget_done(deleted), "confirm", "ok")

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
