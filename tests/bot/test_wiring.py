"""``bot.__main__.open_service``: storage, catalogue, registry and worker built from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import open_service
from recommender.core.config import Settings
from recommender.core.errors import InvalidStars
from recommender.core.types import DATASETS
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.pipeline.worker import TrainingWorker
from recommender.serving.contract import ServingPath
from tests.recommender.serving.service_fakes import (
    CLUSTER_A,
    CLUSTER_B,
    make_model,
    movies,
    popularity,
    publish,
)

HALF = DATASETS["ml-latest-small"].scale
WHOLE = DATASETS["ml-100k"].scale
ALICE = 111_111_111_111_111_111


async def test_open_builds_everything_from_settings(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small")
    async with Storage(settings.db_path) as storage:
        await storage.load_catalog("ml-latest-small", movies(), popularity())
    async with open_service(settings, worker=None) as service:
        assert service.model is None  # nothing published: popularity, said in stats
        assert service.worker is None
        assert (await service.recommend(ALICE)).path is ServingPath.POPULARITY
        assert len(service.catalog) == len(movies())
        assert service.scale == HALF
        publish(Registry(settings.models_dir), make_model("v1"))
        assert service.reload_model() == "v1"
        await service.rate(ALICE, CLUSTER_B[0], 5.0, 1)
        assert (await service.recommend(ALICE)).path is ServingPath.FOLD_IN
    async with open_service(settings) as again:  # the published version is loaded at start-up
        assert again.model_version == "v1"
        assert isinstance(again.worker, TrainingWorker)  # the default worker
        assert [m.movie_id for m, _ in await again.ratings(ALICE)] == [CLUSTER_B[0]]


async def test_scale_follows_the_stored_catalog(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small")
    async with Storage(settings.db_path) as storage:
        await storage.load_catalog("ml-100k", movies(), popularity())
    async with open_service(settings, worker=None) as service:
        assert service.scale == WHOLE  # stored ratings refer to the ml-100k catalog
        with pytest.raises(InvalidStars):
            await service.rate(ALICE, CLUSTER_A[0], 4.5, 1)
