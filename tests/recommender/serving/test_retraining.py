"""Retrains across processes and restarts: the lock row, recorded outcomes, runs whose process died.

Real SQLite storage and a real registry; the worker is the stand-in of ``service_fakes`` and the
"other process" is a real child whose command line looks like a trainer's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.core.errors import RetrainInProgress, RetrainRunningElsewhere
from recommender.core.processes import hostname
from recommender.persistence.registry import Registry
from recommender.persistence.storage import LockOwner
from recommender.serving.retraining import LOCK
from tests.recommender.serving.service_fakes import FakeWorker, make_model, publish
from tests.recommender.serving.test_service import make_service, open_storage

ADMIN = "admin:123456789012345678"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


@pytest.fixture
async def storage(tmp_path: Path):
    storage = await open_storage(tmp_path / "bot.sqlite3")
    yield storage
    await storage.close()


@pytest.fixture
def trainer_process() -> Iterator[int]:
    """A live process whose command line names the pipeline, as a trainer the last bot left."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "recommender.pipeline"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_run_is_recorded_with_its_trigger_and_the_lock_goes_to_the_trainer_and_back(
    storage, registry
):
    publish(registry, make_model("v1"))
    worker = FakeWorker(registry, make_model("v2", metrics={"val_rmse": 0.85, "test": {"rmse": 0.86}}))
    worker.pid = 4_000_000  # what the worker would hand over: the child's pid
    service = make_service(storage, registry, worker=worker)
    run = asyncio.create_task(service.retrain(trigger=ADMIN))
    await worker.started.wait()
    assert await storage.lock_owner(LOCK) == LockOwner(
        4_000_000, hostname(), pytest.approx(time.time(), abs=5), ADMIN
    )
    holder = await service.retrain_holder()
    assert holder is not None and holder.ours and holder.trigger == ADMIN
    worker.release.set()
    done = await run
    assert done.published and await storage.lock_owner(LOCK) is None
    last = await service.last_retrain()
    assert last is not None and (last.trigger, last.published, last.version) == (ADMIN, True, "v2")
    assert last.admin_id == 123456789012345678 and last.metrics == {"val_rmse": 0.9}
    assert await service.retrain_holder() is None


async def test_a_failed_or_refused_run_is_recorded_too(storage, registry):
    publish(registry, make_model("v1"))
    worker = FakeWorker(registry, make_model("v2"), publish=False)
    service = make_service(storage, registry, worker=worker)
    worker.release.set()
    await service.retrain()
    held = await service.last_retrain()
    assert held is not None and not held.published and held.version == "v2" and not held.failed
    assert held.trigger == "schedule" and "worse" in held.reason

    async def broken(*_args, **_kwargs):
        raise OSError("disk full")

    worker.run = broken
    with pytest.raises(OSError):
        await service.retrain(trigger=ADMIN)
    failed = await service.last_retrain()
    assert failed is not None and failed.failed and "OSError" in failed.reason
    assert await storage.lock_owner(LOCK) is None  # free for the next attempt


async def test_a_trainer_the_last_bot_left_running_blocks_a_second_run(storage, registry, trainer_process):
    publish(registry, make_model("v1"))
    await storage.try_lock(LOCK, trainer_process, hostname(), time.time() - 600, note=ADMIN)
    worker = FakeWorker(registry, make_model("v2"))
    service = make_service(storage, registry, worker=worker)
    with pytest.raises(RetrainRunningElsewhere) as refused:
        await service.retrain()
    assert (refused.value.pid, refused.value.trigger, refused.value.same_host) == (
        trainer_process,
        ADMIN,
        True,
    )
    assert isinstance(refused.value, RetrainInProgress)
    assert not worker.started.is_set()  # no second trainer
    holder = await service.retrain_holder()
    assert holder is not None and not holder.ours and holder.pid == trainer_process
    assert await service.recover_retrain() is None  # still running: nothing to record yet


async def test_once_that_trainer_is_gone_its_stored_version_is_recorded(storage, registry):
    publish(registry, make_model("v1"))
    began = time.time() - 300
    # what the orphan did before it ended: stored v2 (trained after the lock was taken) and published it
    publish(registry, make_model("v2", metrics={"val_rmse": 0.8, "trained_at": began + 5}))
    await storage.try_lock(LOCK, dead_pid(), hostname(), began, note=ADMIN)
    service = make_service(storage, registry, worker=FakeWorker(registry, make_model("v3")))
    record = await service.recover_retrain()
    assert record is not None and (record.trigger, record.version, record.published) == (ADMIN, "v2", True)
    assert record.started_at == began and "while the bot was down" in record.reason
    assert (await service.last_retrain()) == record
    assert await storage.lock_owner(LOCK) is None
    assert await service.recover_retrain() is None  # recorded once


async def test_a_dead_trainer_that_stored_nothing_is_a_recorded_failure(storage, registry):
    publish(registry, make_model("v1", metrics={"val_rmse": 0.9, "trained_at": 1.0}))
    pid = dead_pid()
    await storage.try_lock(LOCK, pid, hostname(), time.time() - 60, note="schedule")
    service = make_service(storage, registry, worker=FakeWorker(registry, make_model("v2")))
    record = await service.recover_retrain()
    assert record is not None and record.failed and f"pid {pid}" in record.reason
    assert record.trigger == "schedule"


async def test_a_stale_lock_is_taken_over_by_the_next_run(storage, registry):
    publish(registry, make_model("v1"))
    await storage.try_lock(LOCK, dead_pid(), hostname(), time.time() - 60, note=ADMIN)
    worker = FakeWorker(registry, make_model("v2"))
    service = make_service(storage, registry, worker=worker)
    worker.release.set()
    done = await service.retrain()
    assert done.published
    runs = await storage.retrain_runs(5)
    assert [(r["trigger"], r["version"]) for r in runs] == [("schedule", "v2"), (ADMIN, None)]


async def test_our_own_pid_in_the_lock_is_an_earlier_life_of_the_bot(storage, registry):
    # a container restart often hands the bot the same pid: that lock is stale, not ours
    publish(registry, make_model("v1"))
    await storage.try_lock(LOCK, os.getpid(), hostname(), time.time() - 30, note=ADMIN)
    worker = FakeWorker(registry, make_model("v2"))
    service = make_service(storage, registry, worker=worker)
    assert await service.retrain_holder() is None
    worker.release.set()
    assert (await service.retrain()).published
    assert [r["trigger"] for r in await storage.retrain_runs(5)] == ["schedule", ADMIN]


async def test_a_lock_held_on_another_machine_is_honoured_until_it_is_very_old(storage, registry):
    publish(registry, make_model("v1"))
    await storage.try_lock(LOCK, 77, "gpu-box", time.time() - 60, note="schedule")
    service = make_service(storage, registry, worker=FakeWorker(registry, make_model("v2")))
    with pytest.raises(RetrainRunningElsewhere) as refused:
        await service.retrain()
    assert refused.value.host == "gpu-box" and not refused.value.same_host
    await storage.release_lock(LOCK)
    await storage.try_lock(LOCK, 77, "gpu-box", time.time() - 7 * 3600, note="schedule")
    assert await service.retrain_holder() is None  # six hours is longer than any run here
