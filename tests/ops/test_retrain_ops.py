"""A bot killed mid-retrain, with real processes: the trainer goes with it, or is found and waited for.

``tests/ops/simbot.py`` runs ``python -m bot``'s run path on simcord with the real TrainingWorker
(``python -m recommender.pipeline`` in a child process) over a prepared ml-100k data dir.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.core.processes import pid_alive
from tests.ops.conftest import QUICK_TRAIN, bot_env, training_children
from tests.ops.test_shutdown import health

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _lock(data_dir: Path) -> tuple | None:
    conn = sqlite3.connect(f"file:{data_dir / 'bot.sqlite3'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT owner_pid, owner_host, note FROM locks WHERE name = 'retrain'").fetchone()
    finally:
        conn.close()


def test_sigkill_of_the_bot_mid_retrain_takes_the_trainer_with_it_and_the_restart_records_it(
    data_dir, start_bot
):
    bot = start_bot(data_dir, "--worker-args", "--epochs 30 --max-users 200")
    bot.send({"op": "slash", "as": "carol", "command": "retrain"})
    assert _wait(lambda: training_children(bot.pid), 60), "no training child appeared"
    trainer = training_children(bot.pid)[0]
    # the lock names the trainer (handed over by the bot) and who asked
    assert _wait(lambda: (_lock(data_dir) or (0,))[0] == trainer, 10)
    assert _lock(data_dir)[2] == f"admin:{bot.members['carol']}"
    time.sleep(1.0)
    bot.signal(signal.SIGKILL)
    bot.wait()
    assert _wait(lambda: not pid_alive(trainer), 10), "the trainer outlived the bot"
    # the heartbeat is seconds old, but the health check sees the pid is gone
    checked = health(data_dir)
    assert checked.returncode == 1 and f"the bot (pid {bot.pid}) is not running" in checked.stderr

    again = start_bot(data_dir)
    stats = again.ask({"op": "slash", "as": "carol", "command": "stats"})
    assert "Last retrain: **failed**" in stats["text"], stats["text"]
    assert f"pid {trainer}" in stats["text"] and "ended when the bot stopped" in stats["text"]
    assert f"started by <@{bot.members['carol']}>" in stats["text"]
    assert _lock(data_dir) is None  # taken over: the next /retrain may run
    assert not training_children(again.pid)
    again.send({"op": "exit"})
    assert again.wait() == 0


def test_a_restarted_bot_waits_for_a_trainer_that_outlived_the_old_one_and_records_its_result(
    data_dir, start_bot, movielens_dir
):
    # A trainer the old bot started, still running (say it ignored the signal): no --parent-pid here.
    models = data_dir / "models"
    before = (models / "current").read_text().strip()
    orphan = subprocess.Popen(
        [sys.executable, "-m", "recommender.pipeline", "--no-dotenv", "--quiet", "--force", *QUICK_TRAIN,
         "--epochs", "4"],
        cwd=data_dir.parent,
        env=bot_env(data_dir, movielens_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        conn = sqlite3.connect(data_dir / "bot.sqlite3")
        with conn:
            conn.execute(
                "INSERT INTO locks (name, owner_pid, owner_host, acquired_at, note) VALUES (?, ?, ?, ?, ?)",
                ("retrain", orphan.pid, socket.gethostname(), time.time() - 1, "schedule"),
            )
        conn.close()
        bot = start_bot(data_dir)
        refused = bot.ask({"op": "slash", "as": "carol", "command": "retrain"})
        text = refused["text"]
        assert f"already running in another process (pid {orphan.pid}" in text, text
        assert "I'll post" not in text and "won't start a second one" in text
        assert not training_children(bot.pid)  # no second trainer
        stats = bot.ask({"op": "slash", "as": "carol", "command": "stats"})
        assert f"running in another process (pid {orphan.pid}" in stats["text"], stats["text"]

        assert orphan.wait(timeout=240) == 0  # it publishes (--force)
        after = (models / "current").read_text().strip()
        assert after != before
        stats = bot.ask({"op": "slash", "as": "carol", "command": "stats"})
        assert f"Last retrain: published `{after}`" in stats["text"], stats["text"]
        assert "(scheduled)" in stats["text"] and "Retrain: idle" in stats["text"]
        assert after in stats["text"].split("Last retrain")[0]  # and it is served
        assert _lock(data_dir) is None
        bot.send({"op": "exit"})
        assert bot.wait() == 0
    finally:
        if orphan.poll() is None:
            os.kill(orphan.pid, signal.SIGKILL)
            orphan.wait()
