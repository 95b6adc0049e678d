"""What admins read: retrain progress and results, and ``/stats``. Formatting only.

Both lead with the figures an admin acts on: the held-out RMSE (next to the global-mean baseline),
NDCG@5 of the served top 5 on the same held-out rows, when the model was trained and how many
ratings arrived since; the rest of metrics.json stays on disk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import discord

from bot.ui import words
from recommender.pipeline.protocol import Done, Epoch, Event, Progress, Start
from recommender.serving.contract import RetrainHolder, RetrainRecord, ServiceStats

__all__ = [
    "headline",
    "last_retrain_line",
    "retrain_progress",
    "retrain_result_embed",
    "stats_embed",
]

COLOUR = discord.Colour.blurple()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return discord.utils.format_dt(datetime.fromtimestamp(timestamp, tz=UTC), "R")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def headline(
    metrics: Mapping[str, object], *, trained_at: float | None = None, ratings_since: int | None = None
) -> str:
    """One line per figure: held-out RMSE and NDCG@5, trained at, ratings since (what exists)."""
    test = metrics.get("test")
    test = test if isinstance(test, Mapping) else {}
    lines = []
    rmse, baseline = _number(test.get("rmse")), _number(test.get("global_mean_rmse"))
    if rmse is not None:
        vs = f" (global mean {baseline:.4f})" if baseline is not None else ""
        n = _number(test.get("n"))
        rows = f" on {int(n):,} ratings" if n else ""
        lines.append(f"Held-out RMSE **{rmse:.4f}**{vs}{rows}")
    elif (val := _number(metrics.get("val_rmse"))) is not None:
        lines.append(f"Validation RMSE **{val:.4f}** (no held-out figures for this version)")
    ndcg = _number(test.get("ndcg@5"))
    if ndcg is not None:
        lines.append(f"NDCG@5 **{ndcg:.4f}** (top 5 vs held-out movies rated 4★+)")
    elif rmse is not None:
        lines.append("NDCG@5 not measured (trained before the bot measured it)")
    trained = trained_at if trained_at is not None else _number(metrics.get("trained_at"))
    if trained:
        lines.append(f"Trained {_when(trained)}")
    if ratings_since is not None:
        lines.append(f"{words.plural(ratings_since, 'member rating')} since")
    return "\n".join(lines)


_STAGE_WORDS = {
    "rating": "Training the rating model…",
    "newcomers": "Checking picks for new members…",
    "ranking": "Training the ranking model…",
}


def retrain_progress(event: Event) -> str:
    """One line of progress for the message being edited during a retrain."""
    if isinstance(event, Epoch):
        text = f"{_STAGE_WORDS.get(event.stage, 'Training…')} epoch {event.epoch}/{event.epochs}"
        for key, value in (("loss", event.loss), ("val_loss", event.val_loss)):
            if value is not None:
                text += f" · {key} {value:.4f}"
        return text
    if isinstance(event, Start):
        return "Training started in the worker…"
    if isinstance(event, Progress):
        return f"Training… {event.message}"
    return f"Training… ({event.kind})"


def retrain_result_embed(result: Done | RetrainRecord) -> discord.Embed:
    """A fresh run's ``Done`` or a stored outcome, with its headline figures."""
    published, version, reason = result.published, result.version, result.reason
    if published:
        embed = discord.Embed(
            title="New model published",
            colour=discord.Colour.green(),
            description=_clip(f"Now serving version `{version}`. {reason}".strip(), 4000),
        )
    elif version:
        embed = discord.Embed(
            title="Retrain finished: not published",
            colour=discord.Colour.orange(),
            description=_clip(reason or "The new model was not better than the one serving.", 4000),
        )
    else:
        embed = discord.Embed(
            title="Retrain failed", colour=discord.Colour.red(), description=_clip(reason or "—", 4000)
        )
    figures = headline(result.metrics) if result.metrics else ""
    if figures:
        embed.add_field(name="Figures", value=_clip(figures, 1024), inline=False)
    return embed


def last_retrain_line(record: RetrainRecord) -> str:
    """How the last retrain ended, in one line: published, held back, or failed (and why), by whom."""
    when = f" {_when(record.finished_at)}" if record.finished_at else ""
    who = f" ({words.retrain_trigger(record.trigger)})"
    reason = _clip(record.reason, 300)
    if record.published:
        return f"published `{record.version}`{when}{who}"
    if record.failed:
        return f"**failed**{when}{who}: {reason}"
    return f"not published `{record.version}`{when}{who}: {reason}"


def _interaction_lines(
    interactions: Mapping[str, float | int],
    by_command: Mapping[str, tuple[int, int]] | None,
    autocomplete: Mapping[str, int] | None,
) -> str:
    lines = [f"total {interactions.get('interactions', 0):,} · errors {interactions.get('errors', 0):,}"]
    if "latency_p50_ms" in interactions:
        p50, p99 = interactions["latency_p50_ms"], interactions["latency_p99_ms"]
        lines.append(f"latency p50 {p50:.1f} ms · p99 {p99:.1f} ms")
    if by_command:
        lines.append(" · ".join(f"/{name} {n} ({err} err)" for name, (n, err) in by_command.items()))
    paths = {k[5:]: v for k, v in interactions.items() if k.startswith("path_")}
    if paths:
        lines.append("paths: " + " · ".join(f"{k} {v}" for k, v in paths.items()))
    if autocomplete:
        ok, failed = autocomplete.get("ok", 0), autocomplete.get("failed", 0)
        lines.append(f"autocomplete {ok:,} ok · {failed:,} failed")
    return "\n".join(lines)


def stats_embed(
    stats: ServiceStats,
    *,
    interactions: Mapping[str, float | int] | None = None,
    by_command: Mapping[str, tuple[int, int]] | None = None,
    autocomplete: Mapping[str, int] | None = None,
    last_retrain: RetrainRecord | None = None,
    holder: RetrainHolder | None = None,
) -> discord.Embed:
    """``service.stats()`` with the serving model's figures first, then the last retrain (from the
    database), counts and the bot's own interaction counters."""
    version = stats.model_version
    family = f" ({stats.model_family})" if stats.model_family else ""
    lead = f"Serving `{version}`{family}" if version else "No model yet: members get popular picks"
    figures = headline(
        stats.model_metrics,
        trained_at=stats.model_trained_at if version else None,
        ratings_since=stats.ratings_since_training,
    )
    embed = discord.Embed(
        title="Recommender stats", colour=COLOUR, description=_clip(f"{lead}\n{figures}".strip(), 4000)
    )
    if holder is not None:
        status = words.retrain_status(
            holder.trigger, holder.since, ours=holder.ours, pid=holder.pid, host=holder.host
        )
    else:
        status = "running now" if stats.retrain_running else "idle"
    embed.add_field(name="Retrain", value=_clip(status, 1024), inline=False)
    if last_retrain is not None:
        embed.add_field(name="Last retrain", value=_clip(last_retrain_line(last_retrain), 1024), inline=False)
    embed.add_field(name="Ratings", value=f"{stats.ratings:,}")
    embed.add_field(name="Members", value=f"{stats.members:,}")
    embed.add_field(name="Movies", value=f"{stats.catalog_size:,}")
    embed.add_field(
        name="Model version", value=f"`{version}`{family}" if version else "none yet", inline=False
    )
    embed.add_field(name="Model status", value=_clip(str(stats.model_status), 1024), inline=False)
    if interactions:
        embed.add_field(
            name="Interactions",
            value=_clip(_interaction_lines(interactions, by_command, autocomplete), 1024),
            inline=False,
        )
    return embed
