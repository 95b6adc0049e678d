"""The heartbeat file and ``python -m bot.health``; what the bot does once a shutdown has begun."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import health
from bot.lifecycle import SHUTDOWN_MESSAGE, InFlight

ROOT = Path(__file__).resolve().parents[2]


def beat(path: Path, **fields) -> None:
    health.write_heartbeat(
        path, {"pid": 123, "state": "running", "connected": True, "interval": 30.0, **fields}
    )


def run_check(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "BOT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "bot.health"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_python_m_bot_health_exits_0_when_fresh_and_connected_1_otherwise(tmp_path):
    missing = run_check(tmp_path)
    assert missing.returncode == 1 and "no heartbeat file" in missing.stderr
    beat(tmp_path / "health.json", latency_ms=42.0, model_version="v7")
    ok = run_check(tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1 and "connected" in ok.stdout and "v7" in ok.stdout
    beat(tmp_path / "health.json", beat_at=time.time() - 91)  # three 30 s intervals and a bit
    stale = run_check(tmp_path)
    assert stale.returncode == 1 and "stale heartbeat" in stale.stderr and stale.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"connected": False}, "not connected"),
        ({"state": "stopping"}, "stopping"),
        ({"beat_at": time.time() - 1000}, "stale"),
        ({"interval": 5.0, "beat_at": time.time() - 16}, "stale"),  # the bot's own interval counts
    ],
)
def test_check_reports_why(tmp_path, fields, reason):
    path = tmp_path / "health.json"
    beat(path, **fields)
    healthy, why = health.check(path)
    assert not healthy and reason in why


def test_check_survives_garbage_and_writes_are_atomic(tmp_path):
    path = tmp_path / "health.json"
    path.write_text("{not json")
    assert health.check(path) == (False, f"heartbeat file {path} is not valid JSON with a beat_at time")
    beat(path, latency_ms=float("inf"))  # discord.py's latency before the first ACK
    assert json.loads(path.read_text())["latency_ms"] is None
    assert health.check(path)[0]
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]  # no temp files left behind


async def test_the_bot_beats_on_ready_and_on_its_loop(simcord_env, world, bot_settings):
    path = bot_settings.data_dir / "health.json"
    first = json.loads(path.read_text())
    assert first["connected"] is True and first["state"] == "running" and first["interval"] == 30.0
    assert health.check(path)[0]
    await simcord_env.advance_time(31)
    assert json.loads(path.read_text())["reason"] == "tick"


async def test_after_shutdown_begins_new_commands_are_refused_politely(
    simcord_env, world, fake_service, caplog
):
    bot = simcord_env.bot
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    bot.in_flight.draining = True
    caplog.set_level(logging.INFO, logger="bot.interactions")
    for name, options in (("rate", {"movie": "id:2", "stars": 3.0}), ("recommend", {}), ("stats", {})):
        actor = world.admin if name == "stats" else world.member
        refused = await actor.slash(world.channel, name, **options)
        assert refused.ephemeral and refused.response.content == SHUTDOWN_MESSAGE
    assert await world.member.autocomplete(world.channel, "rate", "movie", "toy") == []
    pressed = await world.member.click(prompt.response, label="Delete everything")
    assert pressed.response.content == SHUTDOWN_MESSAGE
    assert set(fake_service.ratings_by_user[world.member.id]) == {1}  # nothing new, nothing deleted
    assert [c[0] for c in fake_service.calls if c[0] not in ("search", "resolve")] == ["rate"]
    logged = [r.interaction["outcome"] for r in caplog.records if r.name == "bot.interactions"]  # type: ignore[attr-defined]
    assert logged == ["shutting_down"] * 3


async def test_in_flight_drain_waits_for_the_last_interaction():
    gate = InFlight()
    assert gate.enter() and gate.enter()
    waiter = asyncio.create_task(gate.drain(5))
    await asyncio.sleep(0)
    assert not gate.enter()  # refused once draining
    gate.leave()
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.leave()
    assert await waiter is True
    stuck = InFlight()
    stuck.enter()
    assert await stuck.drain(0.01) is False


class _Bot:
    def __init__(self) -> None:
        self.shutdowns = 0
        self.closed = asyncio.Event()

    async def shutdown(self, *, drain_timeout: float) -> None:
        self.shutdowns += 1
        self.closed.set()


_SERVE_IN_A_CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from bot.lifecycle import serve

class Bot:
    def __init__(self):
        self.shutdowns = 0
        self.closed = asyncio.Event()

    async def shutdown(self, *, drain_timeout=25.0):
        self.shutdowns += 1
        self.closed.set()

async def main():
    bot = Bot()

    async def start(_bot):
        print("ready", flush=True)
        await bot.closed.wait()  # like bot.start(): returns once the bot is closed

    stopped_by = await serve(bot, start)
    print(stopped_by, bot.shutdowns, flush=True)

asyncio.run(main())
"""


def test_serve_shuts_down_on_sigterm_and_returns_its_name():
    """The signal goes to a child process running serve(), never to the test runner itself."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE_IN_A_CHILD.format(root=root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.split() == ["SIGTERM", "1"]  # stopped by that signal, shut down once
