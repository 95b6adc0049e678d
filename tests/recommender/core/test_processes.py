"""Process checks with real processes: liveness, the trainer mark, and a child that dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from recommender.core.processes import die_with_parent, is_trainer, pid_alive

ROOT = Path(__file__).resolve().parents[3]

# The parent starts a child that asks to die with it, prints the child's pid, then waits forever.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=sys.stdout)
    time.sleep(600)
    """
)
CHILD = textwrap.dedent(
    """
    import os, time
    from recommender.core.processes import die_with_parent
    assert die_with_parent(os.getppid())
    print(os.getpid(), flush=True)
    time.sleep(600)
    """
)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_pid_alive_tells_a_running_process_from_a_finished_one() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    assert not pid_alive(0) and not pid_alive(-5)


def test_a_zombie_counts_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert _gone_within(proc.pid, 10)  # exited, not yet reaped: still in the process table
    proc.wait()


def test_is_trainer_checks_the_command_line_not_just_the_pid() -> None:
    assert not is_trainer(os.getpid())  # alive, but pytest is no trainer (a reused pid looks like this)
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "-m", "recommender.pipeline"],
    )
    try:
        assert _wait(lambda: is_trainer(fake.pid))
    finally:
        fake.kill()
        fake.wait()
    assert not is_trainer(fake.pid)


def _wait(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_child_that_asked_dies_when_its_parent_is_killed_with_sigkill() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert pid_alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone_within(child, 5), "the child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_die_with_parent_says_no_when_the_parent_is_not_the_one_named() -> None:
    # A parent that died before the request leaves the child re-parented: it must not carry on.
    assert die_with_parent(os.getppid()) is True
    assert die_with_parent(os.getppid() + 100_000) is False
    # keep pytest itself unaffected: clear the request again
    import ctypes

    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)
