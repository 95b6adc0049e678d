"""Liveness for Docker's HEALTHCHECK: the bot writes a heartbeat file, ``python -m bot.health`` reads it.

The running bot replaces ``BOT_DATA_DIR/health.json`` every ``interval`` seconds (and at once when it
connects, disconnects or starts shutting down). The check passes when the process that wrote the file
is alive (its pid, checked when the file was written on this host: a bot killed with SIGKILL fails the
next check at once instead of after the file goes stale), the file is fresh (younger than
``STALE_INTERVALS`` intervals, measured with the interval the bot wrote into it: this catches a hung
bot), the bot says it is connected to the gateway and it is not shutting down. It prints one line and
exits 0 or 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from recommender.core.atomic import atomic_write
from recommender.core.processes import hostname, pid_alive

__all__ = [
    "HEALTH_FILE",
    "INTERVAL",
    "STALE_INTERVALS",
    "check",
    "heartbeat_path",
    "main",
    "write_heartbeat",
]

HEALTH_FILE = "health.json"
INTERVAL = 30.0  # seconds between beats; Docker's HEALTHCHECK interval is of the same order
STALE_INTERVALS = 3  # one missed beat is noise (a slow disk, a GC pause); three is a hung bot


def heartbeat_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / HEALTH_FILE


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # discord.py reports latency as inf/nan before the first heartbeat ACK
    return value


def write_heartbeat(path: Path, fields: Mapping[str, object]) -> None:
    """Atomically replace ``path`` with ``fields`` plus ``beat_at`` (wall-clock seconds).

    No fsync: a heartbeat lost in a power cut is harmless, and fsync every 30 s costs disk wear.
    """
    data = {key: _json_safe(value) for key, value in fields.items()}
    data.setdefault("beat_at", time.time())
    data.setdefault("host", hostname())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(json.dumps(data, separators=(",", ":")).encode()), durable=False)


def check(path: Path, *, now: float | None = None, max_age: float | None = None) -> tuple[bool, str]:
    """``(healthy, one-line reason)`` for the heartbeat file at ``path``."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False, f"no heartbeat file at {path} (the bot has not started, or runs elsewhere)"
    except OSError as exc:
        return False, f"cannot read {path}: {exc.strerror or exc}"
    try:
        data = json.loads(raw)
        beat_at = float(data["beat_at"])
        interval = float(data.get("interval") or INTERVAL)
    except (ValueError, TypeError, KeyError):
        return False, f"heartbeat file {path} is not valid JSON with a beat_at time"
    if not isinstance(data, dict) or not math.isfinite(beat_at):
        return False, f"heartbeat file {path} is malformed"
    limit = max_age if max_age is not None else STALE_INTERVALS * interval
    age = (time.time() if now is None else now) - beat_at
    pid = data.get("pid")
    state = data.get("state", "running")
    if state != "stopped" and isinstance(pid, int) and data.get("host") == hostname() and not pid_alive(pid):
        return False, f"the bot (pid {pid}) is not running; its last beat was {age:.0f} s ago"
    if age > limit:
        return False, f"stale heartbeat: last beat {age:.0f} s ago (limit {limit:.0f} s), pid {pid}"
    if state != "running":
        return False, f"the bot is {data.get('state')} (pid {pid})"
    if not data.get("connected"):
        return False, f"the bot is not connected to the Discord gateway (pid {pid}, beat {age:.0f} s ago)"
    latency = data.get("latency_ms")
    shown = f"{latency:.0f} ms" if isinstance(latency, int | float) else "unknown"
    model = data.get("model_version") or "popularity only"
    return True, f"ok: pid {pid}, connected, latency {shown}, beat {age:.0f} s ago, model {model}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.health", description="Exit 0 if the running bot's heartbeat is fresh."
    )
    parser.add_argument("--file", type=Path, help="heartbeat file (default: $BOT_DATA_DIR/health.json)")
    parser.add_argument("--max-age", type=float, help="seconds (default: 3 of the bot's beat intervals)")
    args = parser.parse_args(argv)
    # Only BOT_DATA_DIR matters here: no full Settings, so a broken .env can't fail the health check.
    path = args.file or heartbeat_path(os.environ.get("BOT_DATA_DIR", "").strip() or "data")
    healthy, reason = check(path, max_age=args.max_age)
    print(("healthy: " if healthy else "unhealthy: ") + reason, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
