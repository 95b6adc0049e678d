"""Which processes are alive, and a child that dies with its parent (Linux), without third-party code.

The bot keeps a lock naming the training process's pid and host; a restarted bot uses these checks to
tell a trainer that is still running from a lock left behind by one that died.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path

__all__ = ["TRAINER_MARK", "die_with_parent", "hostname", "is_trainer", "pid_alive"]

log = logging.getLogger(__name__)

#: What a training process's command line contains (``python -m recommender.pipeline ...``).
TRAINER_MARK = "recommender.pipeline"
_PR_SET_PDEATHSIG = 1


def hostname() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    except OSError as exc:  # pragma: no cover - any other errno: treat as alive, be conservative
        return exc.errno != errno.ESRCH
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS): os.kill already said it exists
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def is_trainer(pid: int) -> bool:
    """True if ``pid`` is alive and is a training process (its command line runs the pipeline).

    The command line check guards against pid reuse: after a reboot or a container restart the pid
    of a dead trainer may belong to any other process, the bot itself included.
    """
    if not pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    if cmdline is None:
        return sys.platform != "linux"  # no /proc to look in: trust the pid
    return TRAINER_MARK in cmdline or "train.py" in cmdline


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    Returns False when the parent is gone already (its death came before the request) or is not
    ``parent_pid``; True when the request is in place or the platform has no such thing (then the
    lock and the pid check cover it). The signal fires when the parent *thread* that forked this
    process ends: the bot starts the trainer from its event-loop thread, which lives as long as the bot.
    """
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl is not available (%s); the trainer may outlive the bot", exc)
    # Checked after the request: a parent that died before it leaves us re-parented (to init or a
    # subreaper), and no signal will ever come.
    return os.getppid() == parent_pid
