"""A tiny synthetic catalog and model with known structure, and a stand-in training worker.

Movies 1-10 (cluster A) and 11-20 (cluster B) point in different directions of the item-factor
space, so a member who likes one cluster must be recommended the rest of it. Movie 40 is in the
catalog but not in the model (the content path). Cluster A is the most popular, B the least, so a
recommendation of B proves the personal path was used and not popularity.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from recommender.core.types import DATASETS, Movie, member_key
from recommender.features.content import ContentFeatures
from recommender.persistence.registry import Registry
from recommender.pipeline.protocol import Done, Epoch, Start
from recommender.scoring.model import ServingModel, fit_content_map

CLUSTER_A = list(range(1, 11))
CLUSTER_B = list(range(11, 21))
NEUTRAL = list(range(21, 40))
CONTENT_ONLY = 40
MODEL_MOVIES = CLUSTER_A + CLUSTER_B + NEUTRAL
HALF = DATASETS["ml-latest-small"].scale


def movies() -> list[Movie]:
    out = [Movie(m, f"Action {m}", 1990 + m, ("Action", "Thriller")) for m in CLUSTER_A]
    out += [Movie(m, f"Drama {m}", 1990 + m, ("Drama", "Romance")) for m in CLUSTER_B]
    out += [Movie(m, f"Comedy {m}", 1990 + m, ("Comedy",)) for m in NEUTRAL]
    out.append(Movie(CONTENT_ONLY, "Brand New Drama", 2024, ("Drama",)))
    return out


def popularity() -> dict[int, tuple[int, float, float]]:
    """movie_id -> (count, mean, Bayesian score): A most popular, then neutral, then B."""
    order = CLUSTER_A + NEUTRAL + CLUSTER_B
    return {m: (100 - i, 4.6 - i * 0.04, 4.5 - i * 0.04) for i, m in enumerate(order)}


# ------------------------------------------------------------------------------------- model


def make_model(
    version: str,
    *,
    family: str = "mf",
    trained_members: Mapping[int, Iterable[int]] | None = None,
    trained_at: float | None = None,
    metrics: dict | None = None,
    without: Iterable[int] = (),
) -> ServingModel:
    """A real 4-dim ServingModel over MODEL_MOVIES (less ``without``); each trained member's vector
    points at its cluster."""
    rng = np.random.default_rng(0)
    left_out = set(without)
    model_movies = [m for m in MODEL_MOVIES if m not in left_out]
    factors = np.zeros((len(model_movies), 4))
    bias = np.zeros(len(model_movies))
    for i, m in enumerate(model_movies):
        if m in CLUSTER_A:
            factors[i, 0], bias[i] = 1.0, 0.3
        elif m in CLUSTER_B:
            factors[i, 1] = 1.0
        else:
            factors[i, 2] = 0.3
    factors += rng.normal(0, 0.05, factors.shape)
    keys, vectors = [], []
    for member, cluster in (trained_members or {}).items():
        keys.append(member_key(member))
        vectors.append([1.0, 0, 0, 0] if list(cluster) == CLUSTER_A else [0, 1.0, 0, 0])
    by_id = {m.movie_id: m for m in movies()}
    genres = [by_id[m].genres for m in model_movies]
    years = [by_id[m].year for m in model_movies]
    content = ContentFeatures.fit(genres, years)
    weights = fit_content_map(
        content.matrix(genres, years), np.hstack([factors, bias[:, None]]), np.ones(len(model_movies)), 1.0
    )
    return ServingModel(
        version=version,
        family=family,
        scale=HALF,
        global_mean=3.5,
        user_keys=keys,
        user_factors=np.asarray(vectors, np.float64).reshape(len(keys), 4),
        user_bias=np.zeros(len(keys)),
        movie_ids=np.asarray(model_movies, np.int64),
        item_factors=factors,
        item_bias=bias,
        item_count=np.full(len(model_movies), 50, np.int64),
        content=content,
        content_weights=weights,
        metrics={"val_rmse": 0.9} if metrics is None else metrics,
        trained_at=time.time() - 60 if trained_at is None else trained_at,
    )


def slow_loader(delay: float):  # type: ignore[no-untyped-def]
    """A registry loader that takes ``delay`` seconds, like reading big arrays, to widen the reload window."""

    def load(folder: Path) -> ServingModel:
        time.sleep(delay)
        return ServingModel.load(folder)

    return load


def publish(registry: Registry, model: ServingModel) -> None:
    """Store ``model`` as a committed version and make it current, as train.py does."""

    def write(folder: Path) -> None:
        model.save(folder)
        (folder / "metrics.json").write_text(json.dumps(model.metrics))

    registry.store(model.version, write)
    registry.set_current(model.version)


def store_only(registry: Registry, model: ServingModel) -> None:
    """Store ``model`` as a committed version without making it current (the publish gate said no)."""

    def write(folder: Path) -> None:
        model.save(folder)
        (folder / "metrics.json").write_text(json.dumps(model.metrics))

    registry.store(model.version, write)


class CountingLoader:
    """A registry loader that counts its calls per version folder."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []

    def __call__(self, folder: Path) -> ServingModel:
        self.calls.append(folder.name)
        if self.delay:
            time.sleep(self.delay)
        return ServingModel.load(folder)


# ----------------------------------------------------------------------------- storage, catalog


class FakeWorker:
    """Publishes ``model`` when released, emitting the train.py progress events; with
    ``publish=False`` it stores the version but the publish gate refuses it, as train.py does."""

    def __init__(self, registry: Registry, model: ServingModel, *, publish: bool = True) -> None:
        self.registry, self.model, self.publish = registry, model, publish
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.trained_at = model.trained_at
        self.running = False
        self.stopped: list[float | None] = []
        #: a process id to hand the retrain lock to (None: no child process is pretended)
        self.pid: int | None = None

    async def stop(self, grace: float | None = None) -> None:
        self.stopped.append(grace)
        self.release.set()

    async def run(self, extra_args=(), *, on_progress=None, force: bool = False, on_spawn=None) -> Done:
        emit = on_progress or (lambda event: asyncio.sleep(0))
        if on_spawn is not None and self.pid is not None:
            await on_spawn(self.pid)
        await emit(Start())
        self.started.set()
        await self.release.wait()
        await emit(Epoch(epoch=1, epochs=1, loss=1.0, val_loss=1.0))
        if self.publish:
            await asyncio.to_thread(publish, self.registry, self.model)
        else:
            await asyncio.to_thread(store_only, self.registry, self.model)
        done = Done(
            ok=True,
            published=self.publish,
            version=self.model.version,
            reason="first model" if self.publish else "held-out RMSE 0.95 is worse than 0.90",
            metrics={"val_rmse": 0.9},
            plot=None,
        )
        await emit(done)
        return done
