"""One structured log line per interaction, and the counters ``/stats`` reads from the same events."""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import Counter, deque

import discord

from recommender.serving.contract import ServingPath

__all__ = ["InteractionStats", "autocomplete_done", "finish", "percentile", "set_path", "start"]

log = logging.getLogger("bot.interactions")

#: One interaction's log line: names to JSON scalars.
Fields = dict[str, str | int | float | None]

_STARTED = "telemetry_started"
_LOGGED = "telemetry_logged"


def start(interaction: discord.Interaction) -> None:
    """Remember when the bot started handling ``interaction`` (first call wins)."""
    interaction.extras.setdefault(_STARTED, time.perf_counter())


def set_path(interaction: discord.Interaction, path: ServingPath) -> None:
    """Record which serving path answered."""
    interaction.extras["path"] = path.value


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of non-empty ``values``; what /stats shows."""
    ordered = sorted(values)
    if q == 50:
        return round(statistics.median(ordered), 1)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


class InteractionStats:
    """Counters fed by the same dict that becomes each interaction's log line, so /stats and the
    logs can't disagree. Latencies are a window of the most recent ``window`` interactions."""

    def __init__(self, window: int = 1000) -> None:
        self.outcomes: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # per command: every outcome but "ok"
        self.paths: Counter[str] = Counter()
        self.autocomplete: Counter[str] = Counter()  # "ok" / "failed"; not counted as interactions
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, fields: Fields) -> None:
        kind = fields["outcome"].split(":")[0]  # "ok:not_published" is still ok
        self.outcomes[kind] += 1
        self.commands[fields["command"]] += 1
        if kind != "ok":
            self.errors[fields["command"]] += 1
        if fields.get("path"):
            self.paths[fields["path"]] += 1
        self.latencies_ms.append(fields["latency_ms"])

    def record_autocomplete(self, fields: Fields) -> None:
        self.autocomplete["ok" if fields["outcome"] == "ok" else "failed"] += 1

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"interactions": sum(self.outcomes.values())}
        out["errors"] = sum(self.errors.values())
        out.update({f"outcome_{k}": v for k, v in sorted(self.outcomes.items())})
        out.update({f"path_{k}": v for k, v in sorted(self.paths.items())})
        if self.latencies_ms:
            out["latency_p50_ms"] = percentile(list(self.latencies_ms), 50)
            out["latency_p99_ms"] = percentile(list(self.latencies_ms), 99)
        return out

    def by_command(self) -> dict[str, tuple[int, int]]:
        """command -> (interactions, errors), most used first."""
        return {name: (n, self.errors.get(name, 0)) for name, n in self.commands.most_common()}


def finish(
    interaction: discord.Interaction, command: str, outcome: str, stats: InteractionStats | None = None
) -> Fields:
    """Log the interaction's single line (once) and count it."""
    if interaction.extras.get(_LOGGED):
        return {}
    interaction.extras[_LOGGED] = True
    began = interaction.extras.get(_STARTED, time.perf_counter())
    fields: Fields = {
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


def autocomplete_done(
    interaction: discord.Interaction,
    command: str,
    outcome: str,
    n_choices: int,
    stats: InteractionStats | None = None,
) -> Fields:
    """Autocomplete runs on every keystroke: its line is DEBUG and it has its own counter."""
    began = interaction.extras.get(_STARTED, time.perf_counter())
    fields: Fields = {
        "command": f"{command}:autocomplete",
        "user_id": interaction.user.id if interaction.user else None,
        "guild_id": interaction.guild_id,
        "latency_ms": round((time.perf_counter() - began) * 1000, 1),
        "choices": n_choices,
        "outcome": outcome,
    }
    if stats is not None:
        stats.record_autocomplete(fields)
    log.debug("autocomplete %s", json.dumps(fields, separators=(",", ":")), extra={"interaction": fields})
    return fields
