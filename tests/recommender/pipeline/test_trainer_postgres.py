"""The trainer on PostgreSQL: a bot whose DATABASE_URL comes from .env starts a trainer that reads the
member ratings from the server (the same path a trainer on another machine takes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recommender.core.config import Secret, Settings
from recommender.data.movielens import load_movielens
from recommender.data.readers import movies_from_frame
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.pipeline.worker import TrainingWorker
from tests.recommender.persistence.conftest import postgres_url  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

QUICK = ["--model", "mf", "--max-users", "50", "--epochs", "2", "--param", "dim=8"]
MEMBERS = (901, 902, 903)


async def test_the_worker_trains_on_member_ratings_stored_in_postgresql(
    postgres_url: str,  # noqa: F811
    movielens_dir: Path,
    tmp_path: Path,
) -> None:
    data = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k", progress=False)
    async with Storage(postgres_url) as storage:
        await storage.load_catalog("ml-100k", movies_from_frame(data.movies))
        for member in MEMBERS:
            for movie in (1, 50, 100, 181):
                await storage.upsert_rating(member, movie, 4.0 + member % 2, None, rated_at=1.0)

    # As a bot configured through .env: DATABASE_URL is in its settings, not in the environment,
    # and no SQLite file exists in the data dir for the trainer to fall back on.
    settings = Settings(
        data_dir=tmp_path / "data",
        movielens_dataset="ml-100k",
        movielens_path=movielens_dir / "ml-100k",
        database_url=Secret(postgres_url),
        log_level="WARNING",
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    worker = TrainingWorker(settings, args=QUICK, env=env, threads=1, nice=0)
    done = await worker.run()
    assert done.ok and done.published, (done.reason, done.stderr[-2000:])
    assert done.metrics["n_member_ratings"] == 4 * len(MEMBERS)
    assert done.metrics["n_members"] == len(MEMBERS)
    model = Registry(settings.models_dir).load_current()
    assert all(model.user_vector(f"member:{m}") is not None for m in MEMBERS)
    assert not (settings.data_dir / "bot.sqlite3").exists()
