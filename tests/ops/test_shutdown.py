"""Graceful shutdown of the real bot process (``python -m bot``'s run path on simcord).

SIGTERM or SIGINT mid-burst: interactions in flight finish, later ones are told the bot is
restarting, a running training child is stopped, storage is closed, the process exits 0, and every
rating whose confirmation was sent is in the database.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.persistence.storage import read_member_ratings
from tests.ops.conftest import ROOT, training_children
from tests.ops.simbot import MEMBERS

pytestmark = pytest.mark.slow


def rate_burst(n: int, offset: int = 0) -> list[dict]:
    # Spread over five members: /rate allows ten a minute per member.
    return [
        {
            "op": "slash",
            "as": MEMBERS[i % len(MEMBERS)],
            "command": "rate",
            "options": {"movie": f"id:{offset + i + 1}", "stars": float(1 + i % 5)},
        }
        for i in range(n)
    ]


def stored(data_dir: Path) -> set[tuple[int, int, float]]:
    frame = read_member_ratings(data_dir / "bot.sqlite3")
    rows = zip(frame.user_id, frame.movie_id, frame.rating, strict=True)
    return {(int(u), int(m), float(r)) for u, m, r in rows}


def confirmed(results: list[dict], members: dict[str, int], burst: list[dict]) -> set[tuple[int, int, float]]:
    """(user, movie, stars) of every /rate whose "Saved" reply was sent."""
    out = set()
    for result in results:
        if result["op"] == "rate" and result["text"].startswith("Saved"):
            cmd = burst[result["n"] - 1]
            movie = int(cmd["options"]["movie"].removeprefix("id:"))
            out.add((members[cmd["as"]], movie, cmd["options"]["stars"]))
    return out


def health(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.health", "--file", str(data_dir / "health.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_burst_drains_and_exits_0_with_every_confirmed_rating_stored(data_dir, start_bot, sig):
    bot = start_bot(data_dir)
    alive = health(data_dir)
    assert alive.returncode == 0, alive.stderr  # connected (simcord's READY) and fresh
    burst = rate_burst(40)
    bot.send(*burst)
    early = [bot.next() for _ in range(6)]
    bot.signal(sig)
    results = early + bot.drain_output()
    assert bot.wait() == 0, bot.log()[-3000:]

    saved = [r for r in results if r["text"].startswith("Saved")]
    refused = [r for r in results if "restarting" in r["text"]]
    assert len(saved) >= 6 and len(saved) + len(refused) == len(results), results
    assert all(r["ephemeral"] for r in refused)
    # Once the bot refused one, it accepted nothing more.
    if refused:
        first_refused = min(r["n"] for r in refused)
        assert all(r["n"] < first_refused for r in saved)
    assert len(results) < len(burst), "the signal arrived after the whole burst; nothing was tested"

    assert confirmed(results, bot.members, burst) <= stored(data_dir)
    log = bot.log()
    assert f"received {sig.name}" in log and "bot exited cleanly" in log
    assert "Traceback" not in log
    assert not training_children(bot.pid)
    down = health(data_dir)
    assert down.returncode == 1 and "stopped" in down.stderr


def test_sigterm_during_a_retrain_stops_the_training_child_and_keeps_the_model(data_dir, start_bot):
    current = (data_dir / "models" / "current").read_text()
    bot = start_bot(data_dir, "--worker-args", "--epochs 200 --patience 200")
    bot.send({"op": "slash", "as": "carol", "command": "retrain"})
    deadline = time.monotonic() + 60
    while not training_children(bot.pid):
        assert time.monotonic() < deadline, "no training child appeared"
        time.sleep(0.2)
    child = training_children(bot.pid)[0]
    time.sleep(1.0)
    bot.signal(signal.SIGTERM)
    answer = bot.next(timeout=60)
    assert bot.wait() == 0, bot.log()[-3000:]
    # The admin's /retrain was in flight: it finished, saying why nothing was published.
    assert "Retrain failed" in answer["text"] and "stopped" in answer["text"], answer
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert not training_children(bot.pid)
    assert (data_dir / "models" / "current").read_text() == current
    assert "stopping the training worker" in bot.log()
