"""The heartbeat file and ``python -m bot.health``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import health

ROOT = Path(__file__).resolve().parents[2]


def beat(path: Path, **fields) -> None:
    health.write_heartbeat(
        path, {"pid": os.getpid(), "state": "running", "connected": True, "interval": 30.0, **fields}
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


# A stand-in bot: writes one fresh heartbeat with its own pid, then waits to be killed.
BEATING = (
    "import os, sys, time; from bot import health; "
    "health.write_heartbeat(health.heartbeat_path(sys.argv[1]), "
    "{'pid': os.getpid(), 'state': 'running', 'connected': True, 'interval': 30.0}); "
    "print('beat', flush=True); time.sleep(60)"
)


def test_a_bot_killed_with_sigkill_fails_the_next_check_at_once_not_after_90_s(tmp_path):
    bot = subprocess.Popen(
        [sys.executable, "-c", BEATING, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert bot.stdout is not None and bot.stdout.readline() == "beat\n"
        assert run_check(tmp_path).returncode == 0
        bot.send_signal(signal.SIGKILL)
        bot.wait()
    finally:
        if bot.poll() is None:
            bot.kill()
    dead = run_check(tmp_path)  # the beat is seconds old: only the pid says the bot is gone
    assert dead.returncode == 1 and f"the bot (pid {bot.pid}) is not running" in dead.stderr


def test_the_pid_is_only_judged_on_the_host_that_wrote_it(tmp_path):
    path = tmp_path / "health.json"
    beat(path, pid=2**22 + 12345, host="another-container")  # not a pid this machine can check
    assert health.check(path)[0]
    beat(path, pid=2**22 + 12345)
    healthy, why = health.check(path)
    assert not healthy and "is not running" in why
    beat(path, pid=2**22 + 12345, state="stopped")  # a clean stop says so, not "not running"
    assert health.check(path) == (False, f"the bot is stopped (pid {2**22 + 12345})")


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
