"""Fixtures for the process tests: a prepared ml-100k data dir and a real bot process on simcord."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK_TRAIN = [
    *("--epochs", "1", "--max-users", "50", "--threads", "1"),
    *("--ranker-param", "epochs=1", "--ranker-param", "dim=8"),
]


def bot_env(data_dir: Path, movielens_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir.parent),
        "PYTHONPATH": str(ROOT),
        "BOT_DATA_DIR": str(data_dir),
        "MOVIELENS_DATASET": "ml-100k",
        "MOVIELENS_PATH": str(movielens_dir / "ml-100k"),
        "LOG_LEVEL": "INFO",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory, movielens_dir: Path) -> Path:
    """ml-100k catalog in SQLite plus one small published model; tests copy it (never share it)."""
    data = tmp_path_factory.mktemp("prepared") / "data"
    env = bot_env(data, movielens_dir)
    trained = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--no-dotenv", "--quiet", *QUICK_TRAIN],
        cwd=data.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    prepared = subprocess.run(
        [sys.executable, "-m", "bot", "--prepare-only"],
        cwd=data.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    return data


@pytest.fixture
def data_dir(prepared_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(prepared_dir, target)
    return target


class BotProcess:
    """``python -m tests.ops.simbot`` as a child process: send commands, read confirmed replies."""

    def __init__(self, data_dir: Path, movielens_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.stderr_path = data_dir.parent / f"bot-{time.monotonic_ns()}.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.simbot", *args],
            cwd=data_dir.parent,
            env=bot_env(data_dir, movielens_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.results: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.next(timeout=120)
        assert self.ready.get("event") == "ready", self.ready
        self.members: dict[str, int] = self.ready["members"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def next(self, timeout: float = 60) -> dict[str, Any]:
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            tail = self.log()[-4000:]
            raise AssertionError(f"no output from the bot in {timeout} s; log:\n{tail}") from None
        if item is None:
            raise AssertionError(f"the bot exited ({self.proc.poll()}); log:\n{self.log()[-4000:]}")
        if "n" in item:
            self.results.append(item)
        return item

    def send(self, *commands: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(json.dumps(c) + "\n" for c in commands))
        self.proc.stdin.flush()

    def ask(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.send(command)
        return self.next(timeout)

    def drain_output(self) -> list[dict[str, Any]]:
        """Every result printed before the process exited."""
        out = []
        while True:
            item = self.lines.get(timeout=30)
            if item is None:
                return out
            if "n" in item:
                self.results.append(item)
                out.append(item)

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._stderr.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if not self._stderr.closed:
            self._stderr.close()


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def training_children(pid: int) -> list[int]:
    return [child for child, cmd in children_of(pid) if "-m recommender.pipeline" in cmd]


@pytest.fixture
def start_bot(movielens_dir: Path):
    started: list[BotProcess] = []

    def start(data_dir: Path, *args: str) -> BotProcess:
        process = BotProcess(data_dir, movielens_dir, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        for child in training_children(process.pid):
            os.kill(child, signal.SIGKILL)
        process.close()
