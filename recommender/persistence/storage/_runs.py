"""Operational records: retrain outcomes (they survive a restart) and cross-process locks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import recommender.persistence.storage._sql as _sql
from recommender.persistence.storage._backend import Backend, Row, Tx

_TRIGGER = re.compile(r"(schedule|admin:\d+)")
KEEP_RETRAIN_RUNS = 200  # a few runs a day: months of history, a tiny table


@dataclass(frozen=True, slots=True)
class LockOwner:
    pid: int
    host: str
    acquired_at: float
    note: str = ""  # what the lock is held for, e.g. a retrain's trigger


def _run(row: Row) -> dict[str, Any]:
    started, finished, trigger, published, version, reason, metrics = row
    return {
        "started_at": float(started),
        "finished_at": float(finished),
        "trigger": trigger,
        "published": bool(published),
        "version": version,
        "reason": reason,
        "metrics": json.loads(metrics),
    }


class OperationsMixin:
    _backend: Backend

    # -- retrain outcomes ----------------------------------------------------------------------
    async def record_retrain(
        self,
        *,
        started_at: float,
        finished_at: float,
        trigger: str,
        published: bool,
        version: str | None = None,
        reason: str = "",
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember how a retrain ended. ``trigger``: ``schedule`` or ``admin:<user id>``."""
        if not _TRIGGER.fullmatch(trigger):
            raise ValueError(f"trigger must be 'schedule' or 'admin:<user id>', got {trigger!r}")
        row = (
            float(started_at),
            float(finished_at),
            trigger,
            int(bool(published)),
            None if version is None else str(version),
            str(reason),
            _sql.dumps(dict(metrics or {})),
        )

        async def body(tx: Tx) -> None:
            await tx.execute("INSERT INTO retrain_runs VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            await tx.execute(
                "DELETE FROM retrain_runs WHERE finished_at < (SELECT finished_at FROM retrain_runs "
                "ORDER BY finished_at DESC LIMIT 1 OFFSET ?)",
                (KEEP_RETRAIN_RUNS - 1,),
            )

        await self._backend.run(body)

    async def retrain_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest retrain outcomes, newest first."""
        rows = await self._backend.read(
            "SELECT started_at, finished_at, trigger, published, version, reason, metrics FROM retrain_runs "
            "ORDER BY finished_at DESC, started_at DESC LIMIT ?",
            (int(limit),),
        )
        return [_run(r) for r in rows]

    async def last_retrain(self) -> dict[str, Any] | None:
        runs = await self.retrain_runs(1)
        return runs[0] if runs else None

    # -- locks ---------------------------------------------------------------------------------
    async def try_lock(
        self, name: str, pid: int, host: str, acquired_at: float | None = None, *, note: str = ""
    ) -> bool:
        """Take the named lock for ``(pid, host)``. True when taken now or already held by that owner."""
        owner = (int(pid), str(host))
        stamp = time.time() if acquired_at is None else float(acquired_at)

        async def body(tx: Tx) -> bool:
            taken = await tx.fetch(
                "INSERT INTO locks (name, owner_pid, owner_host, acquired_at, note) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                (str(name), *owner, stamp, str(note)),
            )
            if taken:
                return True
            held = await tx.fetch("SELECT owner_pid, owner_host FROM locks WHERE name = ?", (str(name),))
            return bool(held) and (int(held[0][0]), held[0][1]) == owner

        return await self._backend.run(body)

    async def release_lock(self, name: str, pid: int | None = None, host: str | None = None) -> bool:
        """Release the lock if ``(pid, host)`` holds it; without an owner, whoever holds it (for a
        holder known to be dead). True when a lock was released."""
        if (pid is None) != (host is None):
            raise ValueError("give both pid and host, or neither")
        if pid is None:
            rows = await self._backend.write("DELETE FROM locks WHERE name = ? RETURNING name", (str(name),))
        else:
            rows = await self._backend.write(
                "DELETE FROM locks WHERE name = ? AND owner_pid = ? AND owner_host = ? RETURNING name",
                (str(name), int(pid), str(host)),
            )
        return bool(rows)

    async def hand_over_lock(self, name: str, pid: int, host: str, to_pid: int) -> bool:
        """Move the lock held by ``(pid, host)`` to ``to_pid`` on the same host (e.g. the bot hands
        its retrain lock to the training process it started). False if that owner does not hold it."""
        rows = await self._backend.write(
            "UPDATE locks SET owner_pid = ? "
            "WHERE name = ? AND owner_pid = ? AND owner_host = ? RETURNING name",
            (int(to_pid), str(name), int(pid), str(host)),
        )
        return bool(rows)

    async def lock_owner(self, name: str) -> LockOwner | None:
        rows = await self._backend.read(
            "SELECT owner_pid, owner_host, acquired_at, note FROM locks WHERE name = ?", (str(name),)
        )
        if not rows:
            return None
        pid, host, acquired_at, note = rows[0]
        return LockOwner(int(pid), host, float(acquired_at), note or "")
