"""Per-user and per-server rate-limit buckets, kept on the bot, in bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from discord import app_commands

__all__ = ["LIMITS", "MAX_BUCKETS", "Cooldowns"]

#: A hard cap on buckets (one per member and limit, one per server); the least recently used goes first.
MAX_BUCKETS = 100_000


class Cooldowns:
    """Per-user rate limits, owned by one bot.

    ``app_commands.checks.cooldown`` keeps its buckets in the decorator's closure, i.e. one set per
    process shared by every bot instance; keeping them on the bot makes two bots (or two tests)
    independent.

    Memory stays bounded over months: a bucket unused for its whole window holds nothing (discord.py's
    ``Cooldown`` would start it afresh), so buckets are kept in least-recently-used order and each use
    drops those whose window has passed; ``max_buckets`` caps them on top of that, dropping the least
    recently used (at worst a member gets a fresh budget early).
    """

    def __init__(self, max_buckets: int = MAX_BUCKETS, clock: Callable[[], float] = time.time) -> None:
        self.max_buckets = max_buckets
        self._clock = clock
        # key -> (bucket, when it stops mattering: last use + its window), least recently used first
        self._buckets: OrderedDict[tuple[str, int], tuple[app_commands.Cooldown, float]] = OrderedDict()

    def hit(self, name: str, user_id: int, rate: int, per: float) -> float | None:
        """Count one use; the seconds to wait if over the limit, else ``None``."""
        now = self._clock()
        self._sweep(now)
        key = (name, user_id)
        entry = self._buckets.pop(key, None)
        bucket = entry[0] if entry is not None else app_commands.Cooldown(rate, per)
        retry_after = bucket.update_rate_limit(now)
        self._buckets[key] = (bucket, now + per)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return retry_after

    def peek(self, name: str, key: int, rate: int, per: float) -> float | None:
        """The seconds to wait if one more use would be over the limit, without counting it."""
        entry = self._buckets.get((name, key))
        if entry is None:
            return None
        bucket, now = entry[0], self._clock()
        if bucket.get_tokens(now) > 0:
            return None
        return bucket.get_retry_after(now) or None

    def _sweep(self, now: float) -> None:
        while self._buckets:
            _, expires = next(iter(self._buckets.values()))
            if expires > now:
                return
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)

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
