"""One place that turns any failure of a command into one ephemeral message for the member.

Domain errors (``RecommenderError``) carry their own member-facing text; framework errors (checks,
cooldowns, bad options) get a short explanation; anything else is a bug: it is logged with its
traceback and the member gets a generic apology, never the exception text.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.ui import night_card, words
from recommender.core.errors import RecommenderError, UnknownMovie
from recommender.serving.catalog import AmbiguousTitle
from recommender.serving.contract import ImportRefused, MovieNightRefused

__all__ = [
    "GENERIC_APOLOGY",
    "AdminOnly",
    "GuildBusy",
    "NotYourList",
    "describe_error",
    "send_ephemeral",
    "unwrap",
]

log = logging.getLogger(__name__)

GENERIC_APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again later."


class AdminOnly(app_commands.CheckFailure):
    """Raised by the admin check; its text is shown to the member."""

    def __init__(self) -> None:
        super().__init__(
            "Only server admins can use this command (Manage Server permission or the bot's admin role)."
        )


class GuildBusy(app_commands.CheckFailure):
    """The whole server is over its per-minute command budget (one member's script, or a raid)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__("This server is sending me too many commands right now.")


class NotYourList(app_commands.CheckFailure):
    """A button under another member's list was pressed."""

    def __init__(self) -> None:
        super().__init__(words.NOT_YOUR_LIST)


def unwrap(error: BaseException) -> BaseException:
    """The error that really happened, under discord.py's invoke/transform wrappers."""
    seen = 0
    while seen < 5:
        seen += 1
        if isinstance(error, app_commands.CommandInvokeError):
            error = error.original
        elif isinstance(error, app_commands.TransformerError) and error.__cause__ is not None:
            error = error.__cause__
        else:
            break
    return error


def describe_error(error: BaseException) -> tuple[str, str, bool]:
    """``(member message, outcome label, expected)`` for an error raised by a command.

    ``expected`` is False for bugs, which are logged with their traceback.
    """
    error = unwrap(error)
    if isinstance(error, ImportRefused):
        return words.import_refused(error.code), f"error:ImportRefused:{error.code.value}", True
    if isinstance(error, MovieNightRefused):
        message = night_card.night_refused(error.code, error.night)
        return message, f"error:MovieNightRefused:{error.code.value}", True
    if isinstance(error, AmbiguousTitle):
        return words.ambiguous_title(error.query, error.suggestions), "error:UnknownMovie", True
    if isinstance(error, UnknownMovie):
        return words.unknown_movie(error.query, error.suggestions), "error:UnknownMovie", True
    if isinstance(error, RecommenderError):
        return str(error), f"error:{type(error).__name__}", True
    if isinstance(error, app_commands.CommandOnCooldown):
        wait = max(1, round(error.retry_after + 0.49))
        return (
            f"You're going a bit fast: please try again in {wait} s.",
            "cooldown",
            True,
        )
    if isinstance(error, GuildBusy):
        wait = max(1, round(error.retry_after + 0.49))
        return (
            f"This server is sending me a lot of commands right now: please try again in {wait} s.",
            "rate_limited",
            True,
        )
    if isinstance(error, AdminOnly | NotYourList):
        return str(error), "forbidden", True
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server.", "forbidden", True
    if isinstance(error, app_commands.MissingPermissions | app_commands.MissingRole):
        return str(AdminOnly()), "forbidden", True
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here.", "forbidden", True
    if isinstance(error, app_commands.TransformerError):
        return f"I couldn't understand “{str(error.value)[:80]}” for that option.", "bad_input", True
    return GENERIC_APOLOGY, f"bug:{type(error).__name__}", False


async def send_ephemeral(
    interaction: discord.Interaction, message: str, *, view: discord.ui.View | None = None
) -> None:
    """Reply privately whether or not the interaction was already acknowledged."""
    extra = {"view": view} if view is not None else {}
    if not interaction.response.is_done():
        await interaction.response.send_message(message, ephemeral=True, **extra)
        return
    if interaction.extras.get("public_defer"):
        # A public "thinking…" placeholder can't become private, and a follow-up would only replace
        # it (publicly). So: complete it, answer privately, then remove the public placeholder.
        await interaction.edit_original_response(content="I couldn't answer that one.")
        await interaction.followup.send(message, ephemeral=True, **extra)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.debug("could not delete the public placeholder after an error", exc_info=True)
        return
    await interaction.followup.send(message, ephemeral=True, **extra)
