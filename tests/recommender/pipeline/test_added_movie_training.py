"""A movie an admin added is learned by the next real retrain: its member ratings are trained on,
its features come from the catalogue, and afterwards it is served from its own embedding."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recommender.core.types import DATASETS, Movie
from recommender.data.movielens import load_movielens
from recommender.data.readers import movies_from_frame
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.pipeline.frame import build_training_frame
from recommender.serving.catalog import Catalog
from recommender.serving.contract import ContentReason, ServingPath
from recommender.serving.service import RecommenderService

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
QUICK = [
    "--no-dotenv",
    "--model",
    "mf",
    "--max-users",
    "50",
    "--epochs",
    "2",
    "--param",
    "dim=8",
    "--threads",
    "1",
    "--no-ranker",  # this test is about the rating model's embedding of an added movie
]
MEMBERS = range(1, 9)


def test_the_frame_keeps_member_ratings_of_added_movies(movielens_dir, tmp_path):
    data = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k", progress=False)
    added = pd.DataFrame(
        {"movie_id": [10_000_000], "title": ["New"], "year": [2024], "genres": [("Sci-Fi",)]}
    ).astype({"year": "Int64"})
    members = pd.DataFrame(
        {"user_id": [5, 5], "movie_id": [10_000_000, 50], "rating": [4.0, 5.0], "timestamp": [1, 2]}
    )
    without = build_training_frame(data, members, max_users=10, test_fraction=0.0)
    assert without.n_member_ratings == 1  # a movie outside the dataset: dropped, as before
    frame = build_training_frame(data, members, max_users=10, test_fraction=0.0, added=added)
    assert frame.n_member_ratings == 2 and frame.movies is not None
    row = frame.movies[frame.movies["movie_id"] == 10_000_000].iloc[0]
    assert (row["title"], int(row["year"]), row["genres"]) == ("New", 2024, ("Sci-Fi",))
    assert len(frame.movies) == len(data.movies) + 1


async def test_after_a_real_quick_retrain_an_added_movie_has_its_own_embedding(movielens_dir, tmp_path):
    data_dir = tmp_path / "data"
    data = load_movielens(
        "ml-100k", cache_dir=tmp_path / "cache", local_path=movielens_dir / "ml-100k", progress=False
    )
    async with Storage(data_dir / "bot.sqlite3") as storage:
        await storage.load_catalog("ml-100k", movies_from_frame(data.movies))
        movie = await storage.add_movie(Movie(0, "Dune: Part Two", 2024, ("Action", "Sci-Fi")), added_by=1)
        for member in MEMBERS:
            await storage.upsert_rating(member, movie.movie_id, 4.0 + member % 2, None, rated_at=1.0)
            await storage.upsert_rating(member, 50, 5.0, None, rated_at=1.0)  # Star Wars
            await storage.upsert_rating(member, 1, 3.0, None, rated_at=1.0)

    env = {
        **os.environ,
        "BOT_DATA_DIR": str(data_dir),
        "MOVIELENS_DATASET": "ml-100k",
        "MOVIELENS_PATH": str(movielens_dir / "ml-100k"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "recommender.pipeline", *QUICK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    registry = Registry(data_dir / "models")
    model = registry.load_current()
    assert model.has_movie(movie.movie_id)
    assert model.metrics["n_member_ratings"] == 3 * len(MEMBERS)

    async with Storage(data_dir / "bot.sqlite3") as storage:
        movies = await storage.all_movies()
        service = RecommenderService(
            storage,
            Catalog(movies),
            registry,
            DATASETS["ml-100k"].scale,
            dataset="ml-100k",
            added=[movie.movie_id],
        )
        service.reload_model()
        assert service.model_version == model.version
        prediction = await service.predict(1, movie.movie_id)
        assert prediction.path is ServingPath.TRAINED and prediction.content_reason is None
        # a new member who rated it is folded in through its embedding, not ignored
        await service.rate(99, movie.movie_id, 5.0)
        assert (await service.predict(99, 50)).path is ServingPath.FOLD_IN
        assert (await service.recommend(99)).n_ratings == 1
        unlearned = await service.add_movie("Newer Still", 2025, "Drama", added_by=1)
        assert (await service.predict(1, unlearned.movie_id)).content_reason is ContentReason.ADDED_MOVIE
