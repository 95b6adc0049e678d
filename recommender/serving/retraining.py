"""The service's part for retraining: one run at a time across processes, every outcome recorded.

A mixin of :class:`recommender.serving.service.RecommenderService` (kept apart to keep files short).

One run at a time, also across processes and restarts: a ``retrain`` lock row in the database names
the training process (pid, host) and what started it. The bot takes it for itself, hands it to the
child as soon as it runs, and releases it when the run ends. The child ends itself when the bot dies
(``--parent-pid``), so a bot killed mid-run normally takes its trainer along; if a trainer does
outlive the bot, the restarted bot sees a live trainer pid in the lock and starts no second run, and
once the holder is gone (dead pid on this host) it records what that run left in the registry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from recommender.core.errors import RecommenderError, RetrainInProgress, RetrainRunningElsewhere
from recommender.core.processes import hostname, is_trainer, pid_alive
from recommender.pipeline.protocol import Done
from recommender.serving.contract import ProgressCallback, RetrainHolder, RetrainRecord

if TYPE_CHECKING:
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import LockOwner, Storage
    from recommender.scoring.model import ServingModel

__all__ = ["CLAIM_GRACE", "FOREIGN_LOCK_MAX_AGE", "LOCK", "Retraining"]

log = logging.getLogger(__name__)

LOCK = "retrain"
#: A lock names the bot's own pid for the moment between taking it and starting the trainer.
CLAIM_GRACE = 120.0
#: A lock held on another machine can't be checked by pid; after this long it is taken over.
FOREIGN_LOCK_MAX_AGE = 6 * 3600.0
TRIGGERS = ("schedule", "admin:")


def _trigger(note: str) -> str:
    return note if note == "schedule" or (note.startswith("admin:") and note[6:].isdigit()) else "schedule"


class Retraining:
    storage: Storage
    registry: Registry
    worker: Any
    _retrain_lock: asyncio.Lock
    model: ServingModel | None
    model_version: str | None

    if TYPE_CHECKING:  # the service's own

        async def reload_model_async(self) -> ServingModel | None: ...

    # -- the lock -----------------------------------------------------------------------------
    def _holder(self, owner: LockOwner) -> RetrainHolder:
        host = hostname()
        ours = owner.host == host and self._retrain_lock.locked() and owner.pid in self._our_pids()
        return RetrainHolder(
            owner.pid, owner.host, owner.acquired_at, _trigger(owner.note), ours, owner.host == host
        )

    def _our_pids(self) -> set[int]:
        pids = {os.getpid()}
        child = getattr(self.worker, "pid", None)
        if child:
            pids.add(int(child))
        return pids

    def _holder_alive(self, owner: LockOwner, *, now: float | None = None) -> bool:
        age = (time.time() if now is None else now) - owner.acquired_at
        if owner.host != hostname():
            return age < FOREIGN_LOCK_MAX_AGE
        if owner.pid in self._our_pids():
            # this process's pid (or its child's) from an earlier life of the bot: a container
            # restart often hands out the same pid again
            return self._retrain_lock.locked()
        if is_trainer(owner.pid):
            return True
        # a bot that has just taken the lock and not yet started its trainer
        return pid_alive(owner.pid) and age < CLAIM_GRACE

    async def retrain_holder(self) -> RetrainHolder | None:
        owner = await self.storage.lock_owner(LOCK)
        if owner is None or not self._holder_alive(owner):
            return None
        return self._holder(owner)

    async def _claim(self, trigger: str) -> None:
        host, me = hostname(), os.getpid()
        owner = await self.storage.lock_owner(LOCK)
        if owner is not None and owner.host == host and owner.pid in self._our_pids():
            await self._recover(owner)  # our own pid from an earlier life of the bot (same pid again)
        for _ in range(3):
            if await self.storage.try_lock(LOCK, me, host, note=trigger):
                return
            owner = await self.storage.lock_owner(LOCK)
            if owner is None:
                continue  # released in between: try again
            if self._holder_alive(owner):
                raise RetrainRunningElsewhere(
                    owner.pid,
                    owner.host,
                    owner.acquired_at,
                    _trigger(owner.note),
                    same_host=owner.host == host,
                )
            await self._recover(owner)
        raise RetrainInProgress("Another process keeps taking the retrain lock; try again in a minute.")

    # -- a run ----------------------------------------------------------------------------------
    async def retrain(
        self, on_progress: ProgressCallback | None = None, *, force: bool = False, trigger: str = "schedule"
    ) -> Done:
        """Train a new version in the worker (one at a time, across processes), record how it ended,
        and serve it if published."""
        if self.worker is None:
            raise RecommenderError("Retraining isn't set up on this bot.")
        if not trigger.startswith(TRIGGERS):
            raise ValueError(f"trigger must be 'schedule' or 'admin:<user id>', got {trigger!r}")
        if self._retrain_lock.locked():
            raise RetrainInProgress()
        async with self._retrain_lock:
            await self._claim(trigger)
            host, holder = hostname(), os.getpid()
            started = time.time()

            async def hand_over(pid: int) -> None:
                nonlocal holder
                if not await self.storage.hand_over_lock(LOCK, holder, host, pid):
                    raise RetrainInProgress("The retrain lock was taken over while the trainer started.")
                holder = pid

            try:
                done = await self.worker.run(on_progress=on_progress, force=force, on_spawn=hand_over)
            except BaseException as exc:
                await asyncio.shield(self._finish(holder, host, trigger, started, exc))
                raise
            version, published = done.version, done.published
            if published and version:
                await self.reload_model_async()
                if self.model_version != version:
                    log.warning("retrain published %s but the service serves %s", version, self.model_version)
            if version:
                await self._record_version(version, done, published)
            await self._finish(holder, host, trigger, started, done)
            return done

    async def _finish(
        self, holder: int, host: str, trigger: str, started: float, outcome: Done | BaseException
    ) -> None:
        """Record the outcome, then release the lock (recorded first: a restart in between finds a
        dead holder and would record the run a second time otherwise; a duplicate is skipped)."""
        try:
            if isinstance(outcome, Done):
                await self._store(outcome, trigger, started)
            elif not isinstance(outcome, RetrainInProgress):
                name = type(outcome).__name__
                await self._store(
                    Done.failure(f"the retrain stopped with an error ({name})"), trigger, started
                )
        except Exception:
            log.exception("could not record the retrain's outcome")
        finally:
            try:
                await self.storage.release_lock(LOCK, holder, host)
            except Exception:
                log.exception("could not release the retrain lock (a restart takes it over)")

    async def _store(self, done: Done, trigger: str, started: float) -> RetrainRecord:
        record = RetrainRecord(
            started_at=started,
            finished_at=time.time(),
            trigger=trigger,
            published=bool(done.published),
            version=done.version,
            reason=done.reason,
            metrics=dict(done.metrics),
        )
        # storage sits below the serving contract, so it takes the record's fields, not the record
        await self.storage.record_retrain(**dataclasses.asdict(record))
        return record

    async def _record_version(self, version: str, done: Done, published: bool) -> None:
        model = self.model if self.model_version == version else None
        family = done.family or (model.family if model is not None else "unknown")
        trained_at = done.trained_at or (model.trained_at if model is not None else time.time())
        await self.storage.record_model_version(
            version, family, dict(done.metrics), float(trained_at), published
        )

    async def last_retrain(self) -> RetrainRecord | None:
        row = await self.storage.last_retrain()
        return RetrainRecord(**row) if row else None

    async def stop_training(self, grace: float) -> bool:
        """End a training run in progress (shutdown); True if one was running."""
        if self.worker is None or not self.worker.running:
            return False
        log.info("stopping the training worker")
        await self.worker.stop(grace=grace)
        return True

    # -- a run whose process died ---------------------------------------------------------------
    async def recover_retrain(self) -> RetrainRecord | None:
        owner = await self.storage.lock_owner(LOCK)
        if owner is None or self._holder_alive(owner):
            return None
        return await self._recover(owner)

    async def _recover(self, owner: LockOwner) -> RetrainRecord | None:
        """The holder is dead: record what its run left behind, then free the lock."""
        if not await self.storage.release_lock(LOCK, owner.pid, owner.host):
            return None  # another process got there first
        recorded = {r["version"] for r in await self.storage.retrain_runs(50) if r["version"]}
        found = await asyncio.to_thread(self._stored_since, owner.acquired_at)
        found = [v for v in found if v[0] not in recorded]
        trigger = _trigger(owner.note)
        if found:
            version, metrics, published, reason = found[-1]
            done = Done(ok=True, published=published, version=version, reason=reason, metrics=metrics)
            if published:
                await self.reload_model_async()
        else:
            done = Done.failure(
                f"the training process (pid {owner.pid}) ended when the bot stopped, before it stored a "
                "version; the serving model is unchanged"
            )
        record = await self._store(done, trigger, owner.acquired_at)
        log.warning(
            "recorded a retrain whose process died (pid %d on %s): %s",
            owner.pid,
            owner.host,
            record.reason,
        )
        return record

    def _stored_since(self, since: float) -> list[tuple[str, dict[str, Any], bool, str]]:
        """Versions whose training began after ``since``: (version, metrics, published, reason)."""
        out = []
        for info in self.registry.list_versions():
            trained_at = info.metrics.get("trained_at")
            if not isinstance(trained_at, int | float) or trained_at < since - 1:
                continue
            if info.is_current:
                reason = "published while the bot was down"
            else:
                decision = self.registry.decide(dict(info.metrics))
                reason = (
                    "stored, not published: the run ended with the bot before it could publish"
                    if decision.publish
                    else decision.reason
                )
            out.append((info.version, dict(info.metrics), info.is_current, reason))
        return out
