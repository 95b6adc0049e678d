"""Faults with real processes: SIGKILL of the bot and of the training child, broken model versions.

Each test runs the real bot (``tests/ops/simbot.py``: ``python -m bot``'s run path on simcord) over
a copy of a prepared ml-100k data dir with one published model.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.ops.conftest import training_children
from tests.ops.test_shutdown import confirmed, rate_burst, stored

pytestmark = pytest.mark.slow


def test_sigkill_mid_burst_then_restart_keeps_every_confirmed_rating(data_dir, start_bot):
    bot = start_bot(data_dir)
    burst = rate_burst(40)
    bot.send(*burst)
    results = [bot.next() for _ in range(12)]
    bot.signal(signal.SIGKILL)
    bot.wait()
    results += [r for r in bot.drain_output() if r not in results]
    saved = confirmed(results, bot.members, burst)
    assert len(saved) >= 12
    assert len(results) < len(burst), "the kill came after the whole burst; nothing was tested"

    again = start_bot(data_dir)  # WAL recovery on open; no manual repair
    assert saved <= stored(data_dir)
    mine = again.ask({"op": "slash", "as": "alice", "command": "ratings"})
    # The database may hold one more than was confirmed (committed, killed before the reply).
    alice = [m for u, m, _ in stored(data_dir) if u == again.members["alice"]]
    assert alice and f"· {len(alice)} rating" in mine["text"], mine["text"]
    # The restarted bot takes new ratings as usual.
    rate = {"op": "slash", "as": "bob", "command": "rate", "options": {"movie": "id:500", "stars": 4.0}}
    more = again.ask(rate)
    assert more["text"].startswith("Saved")


def _wait_for_training_child(pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not (children := training_children(pid)):
        assert time.monotonic() < deadline, "no training child appeared"
        time.sleep(0.1)
    return children[0]


def test_sigkill_of_the_training_child_keeps_the_serving_model_and_the_next_retrain_works(
    data_dir, start_bot
):
    models = data_dir / "models"
    serving = (models / "current").read_text().strip()
    versions = sorted(p.name for p in models.iterdir() if p.is_dir())
    # --tolerance: the next run publishes even if it is a little worse than the small serving model.
    bot = start_bot(data_dir, "--worker-args", "--epochs 2 --max-users 60 --tolerance 100")
    bot.send({"op": "slash", "as": "carol", "command": "retrain"})
    child = _wait_for_training_child(bot.pid)
    time.sleep(1.5)  # let it get into TensorFlow
    os.kill(child, signal.SIGKILL)
    failed = bot.next(timeout=120)
    assert "Retrain failed" in failed["text"] and "SIGKILL" in failed["text"], failed
    assert (models / "current").read_text().strip() == serving
    assert sorted(p.name for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")) == versions

    stats = bot.ask({"op": "slash", "as": "carol", "command": "stats"})
    assert "Last retrain: **failed**" in stats["text"] and "SIGKILL" in stats["text"], stats["text"]
    assert serving in stats["text"]  # still serving the old version
    assert "/retrain 1 (1 err)" in stats["text"]

    ok = bot.ask({"op": "slash", "as": "carol", "command": "retrain"}, timeout=180)
    assert "New model published" in ok["text"], ok["text"]
    assert ok["attachments"] == ["loss.png"]
    new = (models / "current").read_text().strip()
    assert new != serving and new in ok["text"]
    stats = bot.ask({"op": "slash", "as": "carol", "command": "stats"})
    assert f"Last retrain: published `{new}`" in stats["text"]
    bot.send({"op": "exit"})
    assert bot.wait() == 0


def _corrupt(version_dir: Path) -> None:
    npz = version_dir / "serving.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])


def _half_written(version_dir: Path) -> None:
    (version_dir / "manifest.json").unlink()  # a crash before the manifest: never served


@pytest.mark.parametrize("damage", [_corrupt, _half_written], ids=["corrupt", "half-written"])
def test_a_broken_model_version_means_popularity_and_stats_says_so(data_dir, start_bot, damage):
    version = (data_dir / "models" / "current").read_text().strip()
    damage(data_dir / "models" / version)
    bot = start_bot(data_dir)
    bot.ask({"op": "slash", "as": "alice", "command": "rate", "options": {"movie": "id:50", "stars": 5.0}})
    recs = bot.ask({"op": "slash", "as": "alice", "command": "recommend"})
    assert "Served by: popular" in recs["text"], recs["text"]
    predicted = bot.ask({"op": "slash", "as": "alice", "command": "predict", "options": {"movie": "id:181"}})
    assert "Served by: popular" in predicted["text"]
    stats = bot.ask({"op": "slash", "as": "carol", "command": "stats"})
    assert "Model status: unavailable" in stats["text"], stats["text"]
    assert "Model version: none yet" in stats["text"]
    assert not recs["errors"] and not stats["errors"]
    bot.send({"op": "exit"})
    assert bot.wait() == 0
