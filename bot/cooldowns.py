"""Per-user and per-server rate-limit buckets, kept on the bot."""

from __future__ import annotations

from discord import app_commands

__all__ = ["LIMITS", "Cooldowns"]


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


#: Per-member limits shared by a command and the buttons that stand for it: (uses, seconds).
LIMITS: dict[str, tuple[int, float]] = {
    "rate": (10, 60.0),  # ten ratings a minute: a burst of catching up, not a script
    "recommend": (3, 30.0),  # scoring every movie is the costliest thing a member can ask for
    "import": (3, 600.0),  # a file of thousands of rows, once in a while
    # /movienight, and the host's Pick and Re-roll: each scores every movie for up to 20 members
    "movienight": (6, 60.0),
}
