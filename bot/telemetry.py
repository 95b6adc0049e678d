"""One structured log line per interaction, and the counters ``/stats`` reads from the same events."""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import Counter, deque
from typing import Any

import discord

__all__ = ["InteractionStats", "finish", "start"]

log = logging.getLogger("bot.interactions")

_STARTED = "telemetry_started"
_LOGGED = "telemetry_logged"


def start(interaction: discord.Interaction) -> None:
    """Remember when the bot started handling ``interaction`` (first call wins)."""
    interaction.extras.setdefault(_STARTED, time.perf_counter())


def set_path(interaction: discord.Interaction, path: Any) -> None:
    """Record which serving path answered (``ServingPath`` or its string value)."""
    interaction.extras["path"] = str(getattr(path, "value", path))


class InteractionStats:
    """Counts per command and outcome plus recent latencies; cheap enough to update on every call."""

    def __init__(self, window: int = 1000) -> None:
        self.outcomes: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, fields: dict[str, Any]) -> None:
        self.outcomes[fields["outcome"].split(":")[0]] += 1
        if fields.get("path"):
            self.paths[fields["path"]] += 1
        self.latencies_ms.append(fields["latency_ms"])

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"interactions": sum(self.outcomes.values())}
        out.update({f"outcome_{k}": v for k, v in sorted(self.outcomes.items())})
        out.update({f"path_{k}": v for k, v in sorted(self.paths.items())})
        if self.latencies_ms:
            ordered = sorted(self.latencies_ms)
            out["latency_p50_ms"] = round(statistics.median(ordered), 1)
            out["latency_p99_ms"] = round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)
        return out


def finish(
    interaction: discord.Interaction, command: str, outcome: str, stats: InteractionStats | None = None
) -> dict[str, Any]:
    """Log the interaction's single line (once) and count it."""
    if interaction.extras.get(_LOGGED):
        return {}
    interaction.extras[_LOGGED] = True
    began = interaction.extras.get(_STARTED, time.perf_counter())
    fields: dict[str, Any] = {
        "command": command,
        "user_id": interaction.user.id if interaction.user else None,
        "guild_id": interaction.guild_id,
        "latency_ms": round((time.perf_counter() - began) * 1000, 1),
        "path": interaction.extras.get("path"),
        "outcome": outcome,
    }
    if stats is not None:
        stats.record(fields)
    log.info("interaction %s", json.dumps(fields, separators=(",", ":")), extra={"interaction": fields})
    return fields
