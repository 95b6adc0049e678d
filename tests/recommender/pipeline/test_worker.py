"""TrainingWorker: a child process speaking train.py's JSON-lines protocol, driven from asyncio.

Most tests use a tiny stand-in trainer (fast and scriptable); ``test_real_train_py_*`` runs the real
train.py, kills it with SIGKILL mid-training and checks that ``current`` survives.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recommender.core.config import Settings
from recommender.core.errors import RetrainInProgress
from recommender.pipeline.protocol import Done, Epoch, Event, Start
from recommender.pipeline.worker import TRAIN_MODULE, TrainingWorker, child_env

# Behaves like train.py --progress-json. Env knobs: FAKE_EPOCHS, FAKE_SLEEP, FAKE_MODE; what the
# child saw (argv, pid, token) goes to the JSON file FAKE_REPORT, not into the protocol.
FAKE_TRAINER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    mode = os.environ.get("FAKE_MODE", "ok")
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    def emit(event):
        print(json.dumps(event), flush=True)
    if os.environ.get("FAKE_REPORT"):
        with open(os.environ["FAKE_REPORT"], "w") as fh:
            json.dump({"argv": sys.argv[1:], "pid": os.getpid(), "token": os.environ.get("DISCORD_TOKEN"),
                       "data_dir": os.environ.get("BOT_DATA_DIR")}, fh)
    print("some stray text that is not JSON", flush=True)
    print('{"event": "epoch", "note": "a malformed event: no epoch numbers"}', flush=True)
    print("stderr chatter", file=sys.stderr, flush=True)
    emit({"event": "start", "family": "mf", "a_field_from_a_newer_trainer": 1})
    epochs = int(os.environ.get("FAKE_EPOCHS", "5"))
    for epoch in range(1, epochs + 1):
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0.01")))
        emit({"event": "epoch", "epoch": epoch, "epochs": epochs, "loss": 1 / epoch, "val_loss": 2 / epoch})
    if mode == "crash":
        sys.stderr.write("\\r".join(f"progress {i}" for i in range(200_000)))  # ~2.5 MB, no newline
        print("\\nTraceback: boom", file=sys.stderr, flush=True)
        sys.exit(1)
    emit({"event": "done", "ok": True, "published": True, "version": "v-fake", "reason": "first model",
          "metrics": {"val_rmse": 0.9}, "plot": None})
    sys.exit(0)
    """
)


@pytest.fixture
def fake_script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAINER)
    return path


def make_worker(script: Path, **env: str) -> TrainingWorker:
    base = {**os.environ, "DISCORD_TOKEN": "x" * 60, **env}
    return TrainingWorker(script=script, env=base, grace=2.0)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.first = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        await asyncio.sleep(0)  # a real callback awaits Discord; order must still hold
        self.events.append(event)
        self.first.set()


async def test_progress_events_arrive_in_order_and_done_is_returned(
    fake_script: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    worker = make_worker(fake_script, FAKE_EPOCHS="5", FAKE_REPORT=str(report))
    rec = Recorder()
    done = await worker.run(rec, extra_args=["--model", "mf"])
    kinds = [e.kind for e in rec.events]  # the non-JSON line and the malformed event were skipped
    assert kinds == ["start", "epoch", "epoch", "epoch", "epoch", "epoch", "done"]
    assert [e.epoch for e in rec.events if isinstance(e, Epoch)] == [1, 2, 3, 4, 5]
    assert isinstance(rec.events[0], Start) and rec.events[0].family == "mf"
    assert isinstance(done, Done)
    assert done.ok and done.published and done.version == "v-fake"
    assert done.exit_code == 0
    seen = json.loads(report.read_text())
    assert seen["token"] is None  # DISCORD_TOKEN never reaches the trainer
    assert "--progress-json" in seen["argv"] and seen["argv"][-2:] == ["--model", "mf"]
    assert not worker.running


async def test_a_second_run_is_refused_while_one_runs(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_EPOCHS="50", FAKE_SLEEP="0.02")
    rec = Recorder()
    first = asyncio.create_task(worker.run(rec))
    await asyncio.wait_for(rec.first.wait(), timeout=30)
    assert worker.running
    with pytest.raises(RetrainInProgress):
        await worker.run()
    done = await first
    assert done.ok
    again = await worker.run()  # free again once the first finished
    assert again.ok


async def test_the_event_loop_keeps_running_during_a_run(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_EPOCHS="20", FAKE_SLEEP="0.02")
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await worker.run()
    stop.set()
    await task
    assert ticks >= 20  # ~0.4 s of training; a blocking run would give one tick


async def test_crash_without_done_gives_a_failure_event_with_stderr(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_MODE="crash", FAKE_EPOCHS="2")
    rec = Recorder()
    done = await worker.run(rec)
    assert rec.events[-1] is done
    assert done.kind == "done" and not done.ok and not done.published
    assert done.version is None and done.exit_code == 1
    assert "exited with code 1" in done.reason and "serving model is unchanged" in done.reason
    assert "Traceback: boom" in done.stderr


async def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_MODE="ignore-term", FAKE_EPOCHS="500", FAKE_SLEEP="0.02")
    rec = Recorder()
    task = asyncio.create_task(worker.run(rec))
    await asyncio.wait_for(rec.first.wait(), timeout=30)
    t0 = time.monotonic()
    await worker.stop(grace=0.5)
    done = await task
    assert 0.4 < time.monotonic() - t0 < 10
    assert done.exit_code == -signal.SIGKILL
    assert not done.ok and "was stopped" in done.reason


async def test_cancelling_the_caller_kills_the_child(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_EPOCHS="500", FAKE_SLEEP="0.02")
    rec = Recorder()
    task = asyncio.create_task(worker.run(rec))
    await asyncio.wait_for(rec.first.wait(), timeout=30)
    pid = worker.pid
    assert pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped), not an orphan still training
    assert not worker.running


async def test_time_limit_stops_a_run(fake_script: Path) -> None:
    worker = make_worker(fake_script, FAKE_EPOCHS="500", FAKE_SLEEP="0.02")
    done = await worker.run(time_limit=0.5)
    assert not done.ok and "time limit" in done.stderr


async def test_a_missing_script_is_a_clear_failure(tmp_path: Path) -> None:
    worker = make_worker(tmp_path / "nowhere" / "train.py")
    rec = Recorder()
    done = await worker.run(rec)
    assert rec.events == [done]
    assert not done.ok and "nowhere/train.py does not exist" in done.reason
    assert not worker.running


def test_child_env_passes_settings_and_drops_the_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "rel", movielens_dataset="ml-100k", movielens_path=tmp_path)
    env = child_env(settings, {"DISCORD_TOKEN": "secret", "PATH": "/bin", "MOVIELENS_MIRROR": "http://x"})
    assert "DISCORD_TOKEN" not in env and env["PATH"] == "/bin"
    assert env["BOT_DATA_DIR"] == str((tmp_path / "rel").resolve())
    assert env["MOVIELENS_DATASET"] == "ml-100k" and env["MOVIELENS_PATH"] == str(tmp_path.resolve())
    assert "MOVIELENS_MIRROR" not in env  # the bot's settings win over a stray variable
    worker = TrainingWorker(settings, threads=1, nice=5, args=["--epochs", "3"])
    argv = worker.command(force=True)
    assert argv[:4] == [sys.executable, "-u", "-m", TRAIN_MODULE]
    assert argv[4:] == [
        "--progress-json",
        "--no-dotenv",
        "--parent-pid",  # the trainer ends itself when the bot dies
        str(os.getpid()),
        "--threads",
        "1",
        "--nice",
        "5",
        "--epochs",
        "3",
        "--force",
    ]


def test_child_env_hands_the_bots_database_url_to_the_trainer(tmp_path: Path) -> None:
    from recommender.core.config import Secret

    url = "postgresql://bot:pw@db.example:5432/moviebot"
    # from .env (not in the environment): the child runs with --no-dotenv and must still get it
    settings = Settings(data_dir=tmp_path, database_url=Secret(url))
    assert child_env(settings, {"PATH": "/bin"})["DATABASE_URL"] == url
    # a stray DATABASE_URL in the environment never sends a SQLite bot's trainer elsewhere
    assert "DATABASE_URL" not in child_env(Settings(data_dir=tmp_path), {"DATABASE_URL": url})


async def test_on_spawn_gets_the_child_pid_and_a_failure_there_stops_the_child(
    fake_script: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    worker = make_worker(fake_script, FAKE_REPORT=str(report), FAKE_EPOCHS="3")
    seen: list[int] = []

    async def spawned(pid: int) -> None:
        seen.append(pid)

    done = await worker.run(on_spawn=spawned)
    assert done.ok and seen == [json.loads(report.read_text())["pid"]]

    slow = make_worker(fake_script, FAKE_EPOCHS="1000", FAKE_SLEEP="0.05")
    pids: list[int] = []

    async def refuse(pid: int) -> None:
        pids.append(pid)
        raise RetrainInProgress("lock lost")

    with pytest.raises(RetrainInProgress):
        await slow.run(on_spawn=refuse)
    assert not slow.running
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # stopped and reaped


# ------------------------------------------------------------------------------- the real train.py


@pytest.mark.slow
async def test_real_train_py_killed_or_stopped_mid_run_leaves_current_and_next_run_succeeds(
    tmp_path: Path, movielens_dir: Path
) -> None:
    from recommender.persistence.registry import Registry

    env = {
        **os.environ,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "MOVIELENS_DATASET": "ml-100k",
        "MOVIELENS_PATH": str(movielens_dir / "ml-100k"),
        "DISCORD_TOKEN": "t" * 60,
    }
    quick = ["--max-users", "120", "--param", "dim=8", "--test-fraction", "0.05", "--seed", "1"]
    quick += ["--ranker-param", "epochs=2", "--ranker-param", "dim=8"]
    worker = TrainingWorker(env=env, args=quick, threads=1, nice=0, grace=5.0)
    registry = Registry(tmp_path / "data" / "models")

    first = await worker.run(extra_args=["--epochs", "2"])
    assert first.ok and first.published, first
    served = registry.current_version()
    assert served == first.version

    # Long enough to be killed mid-training; SIGKILL is what the OOM killer or `kill -9` do.
    rec = Recorder()
    epochs_seen = asyncio.Event()

    async def on_progress(event: Event) -> None:
        await rec(event)
        if isinstance(event, Epoch):
            epochs_seen.set()

    long_run = ["--epochs", "200", "--param", "patience=200"]
    task = asyncio.create_task(worker.run(on_progress, extra_args=long_run))
    await asyncio.wait_for(epochs_seen.wait(), timeout=120)
    killed_version = rec.events[0].version  # type: ignore[union-attr]
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    done = await task
    assert done.exit_code == -signal.SIGKILL
    assert not done.ok and not done.published and "SIGKILL" in done.reason
    assert rec.events[0].kind == "start" and rec.events[-1] is done
    assert registry.current_version() == served
    assert registry.load_current().version == served
    assert killed_version not in {v.version for v in registry.list_versions()}

    # A graceful stop (bot shutdown): SIGTERM lets train.py unwind and say so itself.
    epochs_seen.clear()
    rec.events.clear()
    task = asyncio.create_task(worker.run(on_progress, extra_args=long_run))
    await asyncio.wait_for(epochs_seen.wait(), timeout=120)
    await worker.stop()
    done = await task
    assert done.exit_code == 1 and not done.ok and "cancelled" in done.reason, done
    assert registry.current_version() == served
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]

    again = await worker.run(extra_args=["--epochs", "2"], force=True)
    assert again.ok and again.published, again
    assert registry.current_version() == again.version != served
    assert registry.load_current().version == again.version
    assert (
        json.loads((registry.root / str(again.version) / "metrics.json").read_text())["dataset"] == "ml-100k"
    )
