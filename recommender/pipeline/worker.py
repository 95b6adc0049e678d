"""Run ``train.py --progress-json`` in a child process without ever blocking the event loop.

The bot (``/retrain`` and the background loop) awaits :meth:`TrainingWorker.run`; training happens in
another process, so the gateway heartbeat and interactions keep flowing. The child reports progress
as JSON lines on stdout (``pipeline/protocol.py``); each becomes one typed event and one awaited
``on_progress(event)`` call, in order, the last being the :class:`Done` that :meth:`run` also returns.
If the child dies without a ``Done`` (killed, out of memory, crashed) the worker makes one up with
``ok=False`` and the tail of its stderr; the child only moves ``current`` after a complete version is
stored, so the serving model is untouched in that case. No TensorFlow here.

The worker is the one place that allows a single run at a time (:class:`RetrainInProgress`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from recommender.core.config import Settings
from recommender.core.errors import RetrainInProgress
from recommender.pipeline.protocol import Done, Event, event_from_dict

__all__ = ["TRAIN_MODULE", "ProgressCallback", "SpawnCallback", "TrainingWorker", "child_env"]

log = logging.getLogger(__name__)

#: How the child is started: the trainer is a module of the package, never found by path.
TRAIN_MODULE = "recommender.pipeline"
#: Never handed to the trainer: it does not talk to Discord.
SECRET_VARS = ("DISCORD_TOKEN", "TMDB_API_KEY")
ProgressCallback = Callable[[Event], Awaitable[None]]
#: Called with the child's pid as soon as it is started; raising stops the child (e.g. a lock lost).
SpawnCallback = Callable[[int], Awaitable[None]]


def child_env(settings: Settings | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The trainer's environment: ``base`` (default ``os.environ``) without secrets, plus ``settings``.

    The bot's resolved settings are passed explicitly (with absolute paths) and the child is started
    with ``--no-dotenv``, so it trains on exactly the data the bot serves and never reads the token
    from ``.env`` either.
    """
    env = dict(os.environ if base is None else base)
    for name in SECRET_VARS:
        env.pop(name, None)
    if settings is not None:
        env["BOT_DATA_DIR"] = str(Path(settings.data_dir).resolve())
        env["MOVIELENS_DATASET"] = settings.movielens_dataset
        env["LOG_LEVEL"] = settings.log_level
        # The bot may have its PostgreSQL URL from .env, which the child (--no-dotenv) never reads:
        # without it here the trainer would read the SQLite file and miss every member rating.
        if settings.database_url:
            env["DATABASE_URL"] = settings.database_url.get()
        else:
            env.pop("DATABASE_URL", None)
        for name, value in (
            (
                "MOVIELENS_PATH",
                str(Path(settings.movielens_path).resolve()) if settings.movielens_path else None,
            ),
            ("MOVIELENS_MIRROR", settings.movielens_mirror),
        ):
            if value:
                env[name] = value
            else:
                env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _usable_cpus() -> int:
    # The CPUs this process may run on (a container's cpuset), not every CPU of the host.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1  # pragma: no cover - macOS / Windows


class TrainingWorker:
    """One training run at a time in a child process; ``stop()`` ends it for a graceful shutdown."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        args: Sequence[str] = (),
        script: Path | str | None = None,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        grace: float = 10.0,
        threads: int | None = None,
        nice: int = 10,
        stderr_lines: int = 40,
        die_with_bot: bool = True,
    ) -> None:
        """``args`` go to every run (e.g. ``["--model", "mf"]``); ``threads``/``nice`` keep the child
        from starving the bot's event loop on a small machine (default: all cores but one, nice 10)."""
        # a stand-in trainer script (tests); None runs the package trainer with -m
        self.script = Path(script) if script is not None else None
        self.python = python
        self.args = list(args)
        self.env = child_env(settings, env)
        self.grace = grace
        self.threads = threads if threads is not None else max(1, _usable_cpus() - 1)
        self.nice = nice
        self._stderr_lines = stderr_lines
        self.die_with_bot = die_with_bot
        self._busy = False
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._busy

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self, extra: Sequence[str] = (), *, force: bool = False) -> list[str]:
        entry = ["-m", TRAIN_MODULE] if self.script is None else [str(self.script)]
        argv = [self.python, "-u", *entry, "--progress-json", "--no-dotenv"]
        # The child ends itself when the bot dies, even by SIGKILL (no orphan training on its own).
        argv += ["--parent-pid", str(os.getpid())] if self.die_with_bot else []
        argv += ["--threads", str(self.threads)] if self.threads else []
        argv += ["--nice", str(self.nice)] if self.nice else []
        argv += [*self.args, *extra]
        return argv + (["--force"] if force else [])

    async def run(
        self,
        on_progress: ProgressCallback | None = None,
        *,
        force: bool = False,
        extra_args: Sequence[str] = (),
        time_limit: float | None = None,
        on_spawn: SpawnCallback | None = None,
    ) -> Done:
        """Train once and return the final :class:`Done` event. Raises RetrainInProgress if one is running.

        ``time_limit`` (seconds) stops a run that takes longer, like :meth:`stop`. ``on_spawn(pid)`` is
        awaited once the child runs; if it raises, the child is stopped and the error propagates.
        """
        if self._busy:
            raise RetrainInProgress()
        self._busy = True  # set before the first await: a concurrent caller sees it at once
        self._stopping = False
        started = time.monotonic()
        stderr_tail: collections.deque[str] = collections.deque(maxlen=self._stderr_lines)
        final: Done | None = None
        try:
            argv = self.command(extra_args, force=force)
            log.info("starting training: %s", " ".join(argv[2:]))
            try:
                if self.script is not None and not self.script.is_file():
                    # e.g. an install without the repository's train.py: say so, not "exit code 2"
                    raise FileNotFoundError(f"{self.script} does not exist")
                self._proc = proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=self.env,
                    # Own session: a Ctrl-C meant for the bot does not kill a run mid-publish; stop() does.
                    start_new_session=True,
                    limit=1 << 20,
                )
            except OSError as exc:
                log.error("could not start training: %s", exc)
                final = Done.failure(
                    f"could not start training ({exc}); the serving model is unchanged",
                    seconds=round(time.monotonic() - started, 3),
                )
                if on_progress is not None:
                    await self._call(on_progress, final)
                return final
            assert proc.stdout is not None and proc.stderr is not None
            drain = asyncio.create_task(self._drain_stderr(proc.stderr, stderr_tail))
            try:
                if on_spawn is not None:
                    await on_spawn(proc.pid)
                async with asyncio.timeout(time_limit):
                    final = await self._read_events(proc.stdout, on_progress)
                    await proc.wait()
            except TimeoutError:
                log.warning("training exceeded %.0f s; stopping it", time_limit)
                await self.stop()
                stderr_tail.append(f"stopped after the {time_limit:.0f} s time limit")
            except BaseException:
                await self.stop()  # our caller was cancelled: never leave an orphan training
                raise
            finally:
                # The child has exited by now, so stderr reaches EOF promptly.
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(drain, timeout=5)
            code = proc.returncode
            seconds = round(time.monotonic() - started, 3)
            if final is None:
                reason = "was stopped" if self._stopping else _describe_exit(code)
                final = Done.failure(
                    f"the training process {reason}; the serving model is unchanged",
                    stderr="\n".join(stderr_tail),
                    exit_code=code,
                    seconds=seconds,
                )
                if on_progress is not None:
                    await self._call(on_progress, final)
            else:
                stderr = final.stderr if final.ok else "\n".join(stderr_tail)
                final = dataclasses.replace(final, stderr=stderr, exit_code=code, seconds=seconds)
            log.info("training finished (%s): %s", _describe_exit(code), final.reason)
            return final
        finally:
            self._proc = None
            self._busy = False

    async def _read_events(
        self, stream: asyncio.StreamReader, on_progress: ProgressCallback | None
    ) -> Done | None:
        final = None
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except ValueError:
                log.warning("ignoring a non-JSON line from train.py: %.200s", text)
                continue
            try:
                event = event_from_dict(data)
            except (ValueError, TypeError) as exc:
                log.warning("ignoring a malformed event from train.py (%s): %.200s", exc, text)
                continue
            if isinstance(event, Done):
                final = event
            if on_progress is not None:
                await self._call(on_progress, event)
        return final

    @staticmethod
    async def _call(on_progress: ProgressCallback, event: Event) -> None:
        try:
            await on_progress(event)
        except Exception:
            # A failed progress message (e.g. a Discord edit) must not abort the training run.
            log.exception("progress callback failed for a %s event", event.kind)

    @staticmethod
    async def _drain_stderr(stream: asyncio.StreamReader, tail: collections.deque[str]) -> None:
        # Always drained, or a chatty child would fill the pipe and block forever. Read in chunks,
        # not lines: a progress bar redrawn with "\r" never ends its line.
        pending = ""
        while chunk := await stream.read(1 << 16):
            pending += chunk.decode("utf-8", "replace").replace("\r", "\n")
            *lines, pending = pending.split("\n")
            pending = pending[-4096:]
            for text in (line.rstrip() for line in lines):
                if text:
                    tail.append(text[:1000])
                    log.debug("train.py: %s", text)
        if pending.strip():
            tail.append(pending.strip()[:1000])

    async def stop(self, grace: float | None = None) -> None:
        """Terminate a running child: SIGTERM, then SIGKILL after ``grace`` seconds. Idempotent."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._stopping = True
        grace = self.grace if grace is None else grace
        log.info("stopping training process %d", proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            log.warning("training process %d ignored SIGTERM for %.1f s; killing it", proc.pid, grace)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    cancel = stop
