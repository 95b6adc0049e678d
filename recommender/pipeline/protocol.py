"""The worker protocol: the trainer's ``--progress-json`` events, one JSON object per stdout line.

Every event is a frozen dataclass with one ``to_dict`` / ``from_dict``; the ``"event"`` key names
its kind. A run emits one :class:`Start`, then :class:`Epoch` (training) and :class:`Progress`
(stages of training, or ``--evaluate``'s steps) events, and always ends with one :class:`Done`.
Numbers that are not finite travel as ``null``, so every line is strict JSON. No TensorFlow here:
the bot parses these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import resource
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, TextIO

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Done", "Epoch", "Event", "Progress", "Reporter", "Start", "event_from_dict", "finite"]


def finite(value: Any) -> Any:
    """NaN/inf become None (recursively), numpy scalars plain Python, so every event is strict JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Event:
    """``to_dict`` / ``from_dict`` shared by the event dataclasses below."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"event": self.kind, **finite(fields)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse one decoded line; ValueError if a required field is missing or has the wrong type.

        Unknown keys are ignored, so a newer trainer can add fields without breaking an older bot.
        """
        if data.get("event") != cls.kind:
            raise ValueError(f"not a {cls.kind} event: {data.get('event')!r}")
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in data.items() if k in known}
        missing = [
            name
            for name, f in known.items()
            if name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{cls.kind} event without {', '.join(missing)}")
        event = cls(**values)
        event._check()
        return event

    def _check(self) -> None:
        """Type checks of the fields a consumer relies on (overridden where there are any)."""


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


@dataclass(frozen=True)
class Start(_Event):
    """The run began. Training fills the data counts; ``--evaluate`` names its protocol."""

    kind: ClassVar[str] = "start"

    version: str | None = None
    dataset: str | None = None
    family: str | None = None
    seed: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    n_ratings: int | None = None
    n_member_ratings: int | None = None
    n_members: int | None = None

    def _check(self) -> None:
        _need(isinstance(self.params, Mapping), "start params must be an object")


STAGES = ("rating", "ranking", "newcomers")


@dataclass(frozen=True)
class Epoch(_Event):
    """One epoch (or Gibbs sweep) finished; losses are None where the fit has none."""

    kind: ClassVar[str] = "epoch"

    epoch: int
    epochs: int
    loss: float | None = None
    val_loss: float | None = None
    val_rmse: float | None = None
    val_ndcg: float | None = None
    #: which model the epoch belongs to: "rating" (the stars), "ranking" (the /recommend order) or
    #: "newcomers" (a rating model without some users, to choose the ranking's star weights on)
    stage: str = "rating"

    def _check(self) -> None:
        _need(isinstance(self.epoch, int) and isinstance(self.epochs, int), "epoch numbers must be integers")
        values = (self.loss, self.val_loss, self.val_rmse, self.val_ndcg)
        _need(all(_number(v) for v in values), "losses must be numbers")
        _need(self.stage in STAGES, f"stage must be one of {', '.join(STAGES)}")


@dataclass(frozen=True)
class Progress(_Event):
    """A line of progress: a stage of training without epochs begins (``Reporter.phase``), or one
    split and algorithm of ``--evaluate`` was scored."""

    kind: ClassVar[str] = "progress"

    message: str

    def _check(self) -> None:
        _need(isinstance(self.message, str), "progress message must be text")


@dataclass(frozen=True)
class Done(_Event):
    """The last event of every run, including failed ones (``ok`` false, ``reason`` says why).

    The worker adds ``stderr`` (tail of a failed child's), ``exit_code`` and ``seconds``.
    """

    kind: ClassVar[str] = "done"

    ok: bool
    published: bool = False
    version: str | None = None
    reason: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    plot: str | None = None
    family: str | None = None
    trained_at: float | None = None
    stderr: str = ""
    exit_code: int | None = None
    seconds: float | None = None

    def _check(self) -> None:
        _need(isinstance(self.ok, bool) and isinstance(self.published, bool), "ok/published must be booleans")
        _need(isinstance(self.metrics, Mapping), "done metrics must be an object")
        _need(isinstance(self.reason, str), "done reason must be text")

    @classmethod
    def failure(cls, reason: str, **extra: Any) -> Done:
        """A failed run: emitted by the trainer, or made up by the worker for a child that died."""
        return cls(ok=False, reason=reason, **extra)


Event = Start | Epoch | Progress | Done
_KINDS: dict[str, type[_Event]] = {c.kind: c for c in (Start, Epoch, Progress, Done)}


def event_from_dict(data: Any) -> Event:
    """The typed event of one decoded JSON line; ValueError if it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError("an event must be a JSON object")
    kind = _KINDS.get(data.get("event"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"unknown event {data.get('event')!r}")
    return kind.from_dict(data)  # type: ignore[return-value]


class Reporter:
    """Progress for people (concise lines on stderr) or for the worker (JSON lines on ``out``)."""

    def __init__(self, out: TextIO | None, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self._last = time.monotonic()

    @contextlib.contextmanager
    def phase(self, name: str, *, event: bool = True) -> Iterator[None]:
        """A stage of a run: a Progress event as it starts (not before Start: ``event=False``); its
        seconds and the process's peak memory so far are logged as it ends (where a run spends)."""
        if event:
            self.emit(Progress(name))
        started = time.perf_counter()
        yield
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
        log.info("%s: %.1f s, peak RSS so far %d MiB", name, time.perf_counter() - started, peak)

    def emit(self, event: Event) -> None:
        if self.out is not None:
            self.out.write(json.dumps(event.to_dict(), allow_nan=False, default=json_default) + "\n")
            self.out.flush()
            return
        if self.quiet:
            return
        if isinstance(event, Epoch):
            now = time.monotonic()
            stage = "" if event.stage == "rating" else f"{event.stage} "
            parts = [f"{stage}epoch {event.epoch}/{event.epochs}"]
            values = (
                ("loss", event.loss),
                ("val_loss", event.val_loss),
                ("val_rmse", event.val_rmse),
                ("val_ndcg", event.val_ndcg),
            )
            parts += [f"{k} {v:.4f}" for k, v in values if v is not None and math.isfinite(v)]
            print("  ".join(parts) + f"  ({now - self._last:.1f}s)", file=sys.stderr, flush=True)
            self._last = now
        elif isinstance(event, Progress):
            print(event.message, file=sys.stderr, flush=True)
        elif isinstance(event, Start) and event.n_ratings is not None:
            print(
                f"training {event.family} on {event.dataset}: {event.n_ratings:,} ratings "
                f"({event.n_member_ratings or 0:,} from {event.n_members or 0} members), seed {event.seed}",
                file=sys.stderr,
                flush=True,
            )
            self._last = time.monotonic()
