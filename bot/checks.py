"""Checks shared by the cogs: the real admin check and per-user cooldowns kept on the bot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.errors import AdminOnly, GuildBusy

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
        role_id = getattr(getattr(interaction.client, "settings", None), "admin_role_id", None)
        if not is_admin(interaction, role_id):
            raise AdminOnly()
        return True

    return app_commands.check(predicate)


class Cooldowns:
    """Per-user rate limits, owned by one bot.

    ``app_commands.checks.cooldown`` keeps its buckets in the decorator's closure, i.e. one set per
    process shared by every bot instance; keeping them on the bot makes two bots (or two tests)
    independent.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, int], app_commands.Cooldown] = {}

    def hit(self, name: str, user_id: int, rate: int, per: float) -> float | None:
        """Count one use; the seconds to wait if over the limit, else ``None``."""
        bucket = self._buckets.get((name, user_id))
        if bucket is None:
            bucket = self._buckets[(name, user_id)] = app_commands.Cooldown(rate, per)
        return bucket.update_rate_limit()

    def peek(self, name: str, key: int, rate: int, per: float) -> float | None:
        """The seconds to wait if one more use would be over the limit, without counting it."""
        bucket = self._buckets.get((name, key))
        if bucket is None:
            return None
        if bucket.get_tokens() > 0:
            return None
        return bucket.get_retry_after() or None

    def reset(self) -> None:
        self._buckets.clear()


def per_user_cooldown(rate: int, per: float) -> Callable[[T], T]:
    """At most ``rate`` uses per ``per`` seconds per member; raises ``CommandOnCooldown`` beyond."""

    def predicate(interaction: discord.Interaction) -> bool:
        cooldowns: Any = getattr(interaction.client, "cooldowns", None)
        if cooldowns is None:
            return True
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
    client: Any = interaction.client
    cooldowns: Cooldowns | None = getattr(client, "cooldowns", None)
    settings = getattr(client, "settings", None)
    if cooldowns is None or settings is None:
        return
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
