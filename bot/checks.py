"""Checks shared by the cogs: the real admin check and per-user cooldowns kept on the bot."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import discord
from discord import app_commands

from bot.cooldowns import Cooldowns
from bot.errors import AdminOnly, GuildBusy
from bot.protocols import BotState

__all__ = ["Cooldowns", "admin_only", "check_rate_limits", "is_admin", "per_user_cooldown"]

T = TypeVar("T")


def is_admin(interaction: discord.Interaction, admin_role_id: int | None) -> bool:
    """Manage Server (or Administrator) in this channel, or the configured admin role."""
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    user = interaction.user
    if admin_role_id is not None and isinstance(user, discord.Member):
        return any(role.id == admin_role_id for role in user.roles)
    return False


def admin_only() -> Callable[[T], T]:
    """Enforce admin rights; ``default_permissions`` only hides a command and owners can override it."""

    def predicate(interaction: discord.Interaction) -> bool:
        if interaction.guild is None:
            raise app_commands.NoPrivateMessage()
        client = interaction.client
        role_id = client.settings.admin_role_id if isinstance(client, BotState) else None
        if not is_admin(interaction, role_id):
            raise AdminOnly()
        return True

    return app_commands.check(predicate)


def per_user_cooldown(rate: int, per: float) -> Callable[[T], T]:
    """At most ``rate`` uses per ``per`` seconds per member; raises ``CommandOnCooldown`` beyond."""

    def predicate(interaction: discord.Interaction) -> bool:
        client = interaction.client
        if not isinstance(client, BotState):
            return True
        cooldowns = client.cooldowns
        name = interaction.command.qualified_name if interaction.command else "?"
        retry_after = cooldowns.hit(name, interaction.user.id, rate, per)
        if retry_after is not None:
            raise app_commands.CommandOnCooldown(app_commands.Cooldown(rate, per), retry_after)
        return True

    return app_commands.check(predicate)


USER_BUCKET, GUILD_BUCKET = "*member", "*guild"


def check_rate_limits(interaction: discord.Interaction) -> None:
    """Every command counts against the member's and the server's per-minute budget.

    The server bucket is checked first without spending: a member refused by their own limit does not
    use up the server's budget, and a busy server does not use up the member's.
    """
    client = interaction.client
    if not isinstance(client, BotState):
        return
    cooldowns, settings = client.cooldowns, client.settings
    guild_rate = int(settings.guild_commands_per_minute)
    if interaction.guild_id is not None:
        wait = cooldowns.peek(GUILD_BUCKET, interaction.guild_id, guild_rate, 60.0)
        if wait is not None:
            raise GuildBusy(wait)
    user_rate = int(settings.user_commands_per_minute)
    wait = cooldowns.hit(USER_BUCKET, interaction.user.id, user_rate, 60.0)
    if wait is not None:
        raise app_commands.CommandOnCooldown(app_commands.Cooldown(user_rate, 60.0), wait)
    if interaction.guild_id is not None:
        wait = cooldowns.hit(GUILD_BUCKET, interaction.guild_id, guild_rate, 60.0)
        if wait is not None:  # lost a race with another member's command within this tick
            raise GuildBusy(wait)
