"""One structured log line per interaction, and /stats figures computed from the same events."""

from __future__ import annotations

import json
import logging
from collections import Counter

from bot import telemetry
from recommender.core.errors import StorageUnavailable


def lines(caplog, level: int = logging.INFO) -> list[dict]:
    return [
        json.loads(r.getMessage().split(" ", 1)[1])
        for r in caplog.records
        if r.name == "bot.interactions" and r.levelno == level
    ]


async def test_every_command_and_outcome_logs_one_line_that_stats_agrees_with(
    simcord_env, world, fake_service, caplog, lenient_discord
):
    caplog.set_level(logging.DEBUG, logger="bot.interactions")
    member, admin, channel = world.member, world.admin, world.channel
    await member.slash(channel, "rate", movie="id:1", stars=4.0)  # ok
    await member.slash(channel, "rate", movie="id:2", stars=4.3)  # error:InvalidStars
    await member.slash(channel, "rate", movie="Toy Stroy", stars=4.0)  # error:UnknownMovie
    await member.slash(channel, "recommend")  # ok, popularity (no model yet)
    await member.slash(channel, "predict", movie="Heat")  # ok, path
    await member.slash(channel, "similar", movie="Heat")
    await member.slash(channel, "ratings")
    await world.other.slash(channel, "recommend")  # popularity
    await admin.slash(channel, "retrain")  # ok (published)
    await member.slash(channel, "recommend")  # trained: the fake's retrain learned alice's ratings
    await member.slash(channel, "recommend")
    await member.slash(channel, "recommend")  # cooldown (3 per 30 s)
    prompt = await member.slash(channel, "forget")
    fake_service.fail_with = StorageUnavailable()
    await member.click(prompt.response, label="Delete everything")  # forget:confirm error
    fake_service.fail_with = None
    world.guild.set_command_permissions(
        next(c for c in simcord_env.bot.synced_commands if c.name == "stats"), {member: True}
    )
    await member.slash(channel, "stats")  # forbidden
    await member.autocomplete(channel, "rate", "movie", "toy")
    fake_service.search_error = RuntimeError("index gone")
    await member.autocomplete(channel, "predict", "movie", "heat")
    fake_service.search_error = None
    simcord_env.errors  # noqa: B018 - the handled errors above are expected

    logged = lines(caplog)
    assert len(logged) == 15  # one per interaction (the /forget prompt and its button are two)
    assert all(set(e) == {"command", "user_id", "guild_id", "latency_ms", "path", "outcome"} for e in logged)
    outcomes = Counter(e["outcome"] for e in logged)
    assert outcomes["error:InvalidStars"] == outcomes["error:UnknownMovie"] == 1
    assert outcomes["cooldown"] == outcomes["forbidden"] == outcomes["error:StorageUnavailable"] == 1
    assert {e["path"] for e in logged if e["command"] in ("recommend", "predict")} >= {
        "popularity",
        "trained",
    }
    debug = lines(caplog, logging.DEBUG)
    assert [(e["command"], e["outcome"]) for e in debug] == [
        ("rate:autocomplete", "ok"),
        ("predict:autocomplete", "bug:RuntimeError"),
    ]

    caplog.clear()
    stats = await admin.slash(channel, "stats")
    shown = next(f.value for f in stats.response.embeds[0].fields if f.name == "Interactions")
    errors = sum(1 for e in logged if not e["outcome"].startswith("ok"))
    assert f"total {len(logged)} · errors {errors}" in shown
    latencies = [e["latency_ms"] for e in logged]
    p50, p99 = telemetry.percentile(latencies, 50), telemetry.percentile(latencies, 99)
    assert f"latency p50 {p50:.1f} ms · p99 {p99:.1f} ms" in shown
    per_command = Counter(e["command"] for e in logged)
    failed = Counter(e["command"] for e in logged if not e["outcome"].startswith("ok"))
    for command, n in per_command.items():
        assert f"/{command} {n} ({failed[command]} err)" in shown, (command, shown)
    paths = Counter(e["path"] for e in logged if e["path"])
    assert "paths: " + " · ".join(f"{k} {v}" for k, v in sorted(paths.items())) in shown
    assert "autocomplete 1 ok · 1 failed" in shown
    # and /stats itself is logged like everything else
    assert [e["command"] for e in lines(caplog)] == ["stats"]


def test_percentile_and_counters_agree_with_the_fields_they_are_fed():
    from bot.telemetry import InteractionStats, percentile

    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 100.0
    stats = InteractionStats(window=2)
    for outcome, latency in (("ok", 1.0), ("ok:not_published", 2.0), ("error:UnknownMovie", 3.0)):
        stats.record({"command": "rate", "outcome": outcome, "path": "fold_in", "latency_ms": latency})
    summary = stats.summary()
    assert (summary["interactions"], summary["errors"]) == (3, 1)
    assert (summary["outcome_ok"], summary["outcome_error"], summary["path_fold_in"]) == (2, 1, 3)
    assert summary["latency_p50_ms"] == 2.5  # the window keeps the last two latencies
    assert stats.by_command() == {"rate": (3, 1)}
