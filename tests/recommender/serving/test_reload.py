"""Hot reload: the retry throttle for a broken version, the publish gate through the service, and
no version mixing inside one answer while a new version is swapped in under load."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.service import RecommenderService

from .service_fakes import (
    CLUSTER_A,
    CLUSTER_B,
    HALF,
    CountingLoader,
    FakeWorker,
    make_model,
    movies,
    popularity,
    publish,
)

ALICE, BOB = 111, 222


@pytest.fixture
async def storage(tmp_path: Path):
    storage = await Storage(tmp_path / "bot.sqlite3").open()
    await storage.load_catalog("ml-latest-small", movies(), popularity())
    yield storage
    await storage.close()


def service_over(storage: Storage, registry: Registry, **options: object) -> RecommenderService:
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[2] for m, p in popularity().items()}),
        registry,
        HALF,
        popularity=popularity(),
        **options,  # type: ignore[arg-type]
    )
    service.reload_model()
    return service


async def settle(service: RecommenderService) -> None:
    """Let a background reload the last request started finish."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        task = service.watcher._task
        if task is None or task.done():
            return


class CountingRegistry(Registry):
    """Counts load attempts of the current version (a corrupt file fails before any loader runs)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.attempts: list[str | None] = []

    def load_current(self):  # type: ignore[no-untyped-def]
        self.attempts.append(self.current_version())
        return super().load_current()


async def test_a_broken_new_version_is_retried_only_after_the_throttle(storage, tmp_path):
    registry = CountingRegistry(tmp_path / "models")
    publish(registry, make_model("v1"))
    service = service_over(storage, registry, reload_check_seconds=0.0, failed_retry_seconds=3600.0)
    publish(registry, make_model("v2"))
    (registry.path("v2") / "serving.npz").write_bytes(b"garbage")
    for _ in range(5):
        await service.recommend(ALICE)
        await settle(service)
    assert service.model_version == "v1"
    assert registry.attempts.count("v2") == 1  # one failed attempt, then the throttle holds
    assert (await service.stats()).model_status.startswith("ok; version v2 unavailable")

    before = registry.attempts.count("v2")
    eager = service_over(storage, registry, reload_check_seconds=0.0, failed_retry_seconds=0.0)
    for _ in range(3):
        await eager.recommend(ALICE)
        await settle(eager)
    assert registry.attempts.count("v2") - before == 4  # its own first load, then every check retries
    assert eager.model_version is None  # it never had a working version


async def test_the_publish_gate_refusing_a_run_keeps_v1_without_a_reload(storage, tmp_path):
    loader = CountingLoader()
    registry = Registry(tmp_path / "models", loader=loader)
    publish(registry, make_model("v1"))
    worker = FakeWorker(registry, make_model("v2"), publish=False)
    service = service_over(storage, registry, worker=worker)
    loads = len(loader.calls)
    worker.release.set()
    done = await service.retrain()
    assert done.published is False and done.version == "v2"
    assert service.model_version == "v1" and registry.current_version() == "v1"
    assert len(loader.calls) == loads  # nothing was reloaded
    recorded = await storage.model_versions()
    assert [(r["version"], r["published"]) for r in recorded] == [("v2", False)]
    assert (await service.recommend(ALICE)).model_version == "v1"


async def test_no_answer_mixes_versions_during_a_hot_reload(storage, tmp_path):
    """v2 knows fewer movies than v1, so every member's picks differ between them; under load each
    answer's picks must be exactly those of the version it names."""
    v1 = make_model("v1")
    v2 = make_model("v2", without=[*CLUSTER_A[4:7], *CLUSTER_B[4:7]])
    clients = {ALICE: CLUSTER_A, BOB: CLUSTER_B, ALICE + 1: CLUSTER_A, BOB + 1: CLUSTER_B}
    for user, cluster in clients.items():
        for movie_id in cluster[:3]:
            await storage.upsert_rating(user, movie_id, 5.0, 1)
    expected: dict[tuple[str, int], list[int]] = {}
    for model in (v1, v2):
        alone = Registry(tmp_path / f"only-{model.version}")
        publish(alone, model)
        fixed = service_over(storage, alone)
        for user in clients:
            expected[(model.version, user)] = [p.movie.movie_id for p in (await fixed.recommend(user)).picks]
    for user in clients:
        assert expected[("v1", user)] != expected[("v2", user)], "the versions must be told apart"

    registry = Registry(tmp_path / "models", loader=CountingLoader(delay=0.2))
    publish(registry, v1)
    service = service_over(storage, registry, reload_check_seconds=0.0)
    seen: list[tuple[str | None, int, list[int]]] = []
    stop = asyncio.Event()

    async def client(user: int) -> None:
        while not stop.is_set():
            recs = await service.recommend(user)
            seen.append((recs.model_version, user, [p.movie.movie_id for p in recs.picks]))
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(client(u)) for u in clients]
    await asyncio.sleep(0.05)
    await asyncio.to_thread(publish, registry, v2)
    deadline = time.monotonic() + 10
    while service.model_version != "v2" and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a plain attribute
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if r is not None] == []  # no request failed
    assert {version for version, _, _ in seen} == {"v1", "v2"}
    wrong = [(v, u, picks) for v, u, picks in seen if picks != expected[(v or "", u)]]
    assert wrong == []
