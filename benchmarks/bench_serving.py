"""Serving latency of RecommenderService on a MovieLens-25M-sized catalog with synthetic factors.

Builds a throwaway data folder: a SQLite catalog of 62,000 synthetic movies, a published model
version with 64-dimensional random factors (as ``train.py`` would export them), members who were
trained, one member with 500 ratings made since training, and then measures, end to end through
the service (database read included): start-up, ``recommend``, ``predict``, ``similar`` and the
fold-in. The version carries a ranking model of the shape the trainer serves (``--ranker-dim``: the
trainer fits 128 dimensions and serves the narrowest projection within 1% of it on validation, 64 on
ml-latest-small; an item-item part over the 8,000 most-rated movies with 200 neighbours each), so
``recommend`` rows are what ``/recommend`` serves. Targets: recommend p99 < 2 ms, predict p99 < 1 ms,
fold-in p99 < 10 ms (500 ratings). ``--model`` serves a version the trainer published instead of
the synthetic factors (e.g. the one trained on the generated ml-32m-shaped data): the catalogue
holds its movies, and its first trained user is renamed the trained member. Run with::

    .venv/bin/python -m benchmarks.bench_serving [--movies 62000] [--dim 64] [--ranker-dim 64] \
        [--ranker-min-count 5] [--model DATA_DIR/models/VERSION]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# One BLAS thread unless told otherwise (must be set before numpy loads). Scoring is a matvec and a
# small solve per request: a second OpenBLAS thread buys nothing there, and on a busy 2-core machine
# its spinning made the 500-rating fold-in ~30x slower (p50 32 ms vs 0.5 ms) in our runs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bot.__main__ import open_service
from recommender.core.config import Settings
from recommender.core.types import DATASETS, Movie, member_key
from recommender.families.ranker import RankerParams
from recommender.features.content import ContentFeatures
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.scoring.itemitem import sparse_rows
from recommender.scoring.model import ServingModel
from recommender.scoring.ranking import RankingModel
from recommender.serving.contract import ServingPath

GENRES = (
    "Action Adventure Animation Children Comedy Crime Documentary Drama Fantasy Film-Noir Horror "
    "IMAX Musical Mystery Romance Sci-Fi Thriller War Western"
).split()
WORDS = (
    "night day love war star dark city last first house river king queen dead life blue red "
    "man woman story return dream game road sea fire ghost secret time lost world"
).split()
TRAINED_MEMBER = 1_000_000_000_000_001
FOLD_MEMBER = 1_000_000_000_000_002
NEW_MEMBER = 1_000_000_000_000_003
#: the width the trainer served on ml-latest-small (the projection chosen on validation; RESULTS.md)
SERVED_RANKER_DIM = 64
FEW_MEMBER = 1_000_000_000_000_004  # five ratings since training: the ranker plus the stars' share


def synthetic_movies(n: int, rng: np.random.Generator) -> list[Movie]:
    out = []
    for movie_id in range(1, n + 1):
        title = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))).title()
        genres = tuple(sorted(set(rng.choice(GENRES, size=int(rng.integers(1, 4))).tolist())))
        out.append(Movie(movie_id, f"{title} {movie_id}", int(rng.integers(1920, 2024)), genres))
    return out


def synthetic_ranker(
    movie_ids: np.ndarray, counts: np.ndarray, dim: int, rng: np.random.Generator, min_count: int = 0
) -> RankingModel:
    """A ranking model of the trainer's default shape with random weights, ranking every embedded movie
    (the worst case) or, as the trainer does, those with ``min_count`` or more (synthetic) ratings."""
    keep = counts >= min_count
    movie_ids, counts = movie_ids[keep], counts[keep]
    n = movie_ids.size
    items = np.sort(np.argsort(-counts, kind="stable")[:8000])
    dense = np.zeros((items.size, items.size), dtype=np.float32)
    neighbours = rng.integers(0, items.size, (items.size, 200))
    np.put_along_axis(dense, neighbours, rng.random((items.size, 200)).astype(np.float32), axis=1)
    indptr, indices, data = sparse_rows(dense, items, n)
    return RankingModel(
        movie_ids=movie_ids.copy(),
        in_all=rng.normal(0, 0.1, (n, dim)).astype(np.float32),
        in_recent=rng.normal(0, 0.1, (n, dim)).astype(np.float32),
        out=rng.normal(0, 0.1, (n, dim)).astype(np.float32),
        out_bias=rng.normal(0, 0.1, n).astype(np.float32),
        ease_indptr=indptr,
        ease_indices=indices,
        ease_data=data,
        tau=5.0,
        sequence_weight=0.8,
        item_weight=0.2,
        star_weights=RankerParams().star_weight_table(),
    )


def synthetic_model(
    movies: list[Movie],
    n_embedded: int,
    dim: int,
    n_users: int,
    rng: np.random.Generator,
    ranker_dim: int = 0,
    ranker_min_count: int = 0,
) -> ServingModel:
    embedded = movies[:n_embedded]
    movie_ids = np.array([m.movie_id for m in embedded], np.int64)
    counts = rng.zipf(1.5, n_embedded).clip(1, 100_000).astype(np.int64)
    content = ContentFeatures.fit([m.genres for m in movies], [m.year for m in movies])
    keys = [member_key(TRAINED_MEMBER)] + [f"ml:{i}" for i in range(1, n_users)]
    return ServingModel(
        version="bench",
        family="mf",
        scale=DATASETS["ml-25m"].scale,
        global_mean=3.5,
        user_keys=keys,
        user_factors=rng.normal(0, 0.3, (n_users, dim)),
        user_bias=rng.normal(0, 0.2, n_users),
        movie_ids=movie_ids,
        item_factors=rng.normal(0, 0.3, (n_embedded, dim)),
        item_bias=rng.normal(0, 0.3, n_embedded),
        item_count=counts,
        content=content,
        content_weights=rng.normal(0, 0.1, (content.size, dim + 1)),
        rank_weight=0.1,
        metrics={"val_rmse": 0.85},
        trained_at=time.time() - 3600,
        ranker=synthetic_ranker(movie_ids, counts, ranker_dim, rng, ranker_min_count) if ranker_dim else None,
    )


def trained_model(folder: Path) -> ServingModel:
    """A version the trainer published, its first trained user renamed the trained member."""
    model = ServingModel.load(folder)
    keys = list(model.user_keys)
    keys[0] = member_key(TRAINED_MEMBER)
    return dataclasses.replace(model, version="bench", user_keys=keys)


async def prepare(settings: Settings, args: argparse.Namespace) -> tuple[np.ndarray, int]:
    """The catalogue and the model written to ``settings``' folder; the embedded movies' ids and
    a movie without an embedding."""
    rng = np.random.default_rng(args.seed)
    if args.model is not None:
        model = trained_model(args.model)
        args.dim, args.users = model.item_factors.shape[1], len(model.user_keys)
        args.ranker_dim = model.ranker.out.shape[1] if model.ranker is not None else 0
        # the catalogue: the model's movies, then content-only ones after the largest id
        args.movies = len(model.movie_ids) + args.content_only
        movies = synthetic_movies(int(model.movie_ids.max()) + args.content_only, rng)
        known = set(model.movie_ids.tolist())
        movies = [m for m in movies if m.movie_id in known] + movies[-args.content_only :]
    else:
        movies = synthetic_movies(args.movies, rng)
    counts = rng.zipf(1.4, len(movies)).clip(1, 80_000)
    means = rng.uniform(1.5, 4.8, len(movies))
    popularity = {
        m.movie_id: (int(c), float(mu), float((c * mu + 10 * 3.5) / (c + 10)))
        for m, c, mu in zip(movies, counts, means, strict=True)
    }
    if args.model is None:
        model = synthetic_model(
            movies,
            args.movies - args.content_only,
            args.dim,
            args.users,
            rng,
            args.ranker_dim,
            args.ranker_min_count,
        )

    def write(folder: Path) -> None:
        model.save(folder)
        (folder / "metrics.json").write_text(json.dumps(model.metrics))

    registry = Registry(settings.models_dir)
    registry.store(model.version, write)
    registry.set_current(model.version)

    async with Storage(settings.db_path) as storage:
        await storage.load_catalog("ml-25m", movies, popularity)
        # members rate movies the ranking model knows (all of them in the worst case)
        embedded = model.ranker.movie_ids if model.ranker is not None else model.movie_ids
        before = model.trained_at - 60
        for movie_id in rng.choice(embedded, 50, replace=False):
            stars = float(rng.integers(1, 11)) / 2
            await storage.upsert_rating(TRAINED_MEMBER, int(movie_id), stars, 1, rated_at=before)
        for movie_id in rng.choice(embedded, 500, replace=False):
            stars = float(rng.integers(1, 11)) / 2
            await storage.upsert_rating(FOLD_MEMBER, int(movie_id), stars, 1)
        for movie_id in rng.choice(embedded, 5, replace=False):
            await storage.upsert_rating(FEW_MEMBER, int(movie_id), float(rng.integers(1, 11)) / 2, 1)
    return model.movie_ids, movies[-1].movie_id


async def timed(fn: Callable[[], Awaitable[object]], n: int, warmup: int = 20) -> np.ndarray:
    for _ in range(warmup):
        await fn()
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        await fn()
        out[i] = time.perf_counter() - start
    return out * 1000.0


async def run(args: argparse.Namespace) -> tuple[list[tuple[str, np.ndarray, float | None]], int]:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        settings = Settings(data_dir=Path(tmp), movielens_dataset="ml-25m")
        embedded, content_id = await prepare(settings, args)

        started = time.perf_counter()
        opened = open_service(settings, worker=None)
        service = await opened.__aenter__()
        startup = time.perf_counter() - started
        try:
            model = service.model
            if model is None:
                raise SystemExit(
                    f"the service did not load the model: {(await service.stats()).model_status}"
                )
            paths = {
                "trained": (await service.recommend(TRAINED_MEMBER)).path,
                "fold-in": (await service.recommend(FOLD_MEMBER)).path,
                "new": (await service.recommend(NEW_MEMBER)).path,
                "five ratings": (await service.recommend(FEW_MEMBER)).path,
            }
            expected = {
                "trained": ServingPath.TRAINED,
                "fold-in": ServingPath.FOLD_IN,
                "new": ServingPath.POPULARITY,
                "five ratings": ServingPath.FOLD_IN,
            }
            if paths != expected:
                raise SystemExit(f"members were served by unexpected paths: {paths}")
            rng = np.random.default_rng(args.seed + 1)
            fold_ratings = await service.storage.user_ratings(FOLD_MEMBER)
            ids = [r.movie_id for r in fold_ratings]
            stars = [r.stars for r in fold_ratings]

            def random_movie() -> int:
                return int(embedded[rng.integers(0, embedded.size)])

            async def fold_uncached() -> None:
                service._folds.clear()  # measure the solve, not the cache
                await service.recommend(FOLD_MEMBER)

            async def fold_only() -> None:
                model.fold_in(ids, stars)

            n = args.requests
            rows: list[tuple[str, np.ndarray, float | None]] = [
                (
                    "recommend k=5, trained member (50 ratings)",
                    await timed(lambda: service.recommend(TRAINED_MEMBER), n),
                    2.0,
                ),
                (
                    "recommend k=5, popularity (no ratings)",
                    await timed(lambda: service.recommend(NEW_MEMBER), n),
                    2.0,
                ),
                (
                    "recommend k=5, new member, 5 ratings since training",
                    await timed(lambda: service.recommend(FEW_MEMBER), n),
                    2.0,
                ),
                (
                    "recommend k=5, 500 ratings since training (cached)",
                    await timed(lambda: service.recommend(FOLD_MEMBER), n),
                    2.0,
                ),
                (
                    "predict, trained member",
                    await timed(lambda: service.predict(TRAINED_MEMBER, random_movie()), n),
                    1.0,
                ),
                (
                    "predict, content path (no embedding)",
                    await timed(lambda: service.predict(TRAINED_MEMBER, content_id), n),
                    1.0,
                ),
                (
                    "predict, new member (popularity)",
                    await timed(lambda: service.predict(NEW_MEMBER, random_movie()), n),
                    1.0,
                ),
                ("fold-in solve, 500 ratings", await timed(fold_only, n), 10.0),
                ("recommend, fold-in of 500 ratings (uncached)", await timed(fold_uncached, n), 10.0),
                ("similar k=5", await timed(lambda: service.similar(random_movie()), n), None),
            ]
            rows.insert(
                0, ("start-up: open db, build catalog, load arrays", np.array([startup * 1000.0]), None)
            )
            return rows, (model.ranker.size if model.ranker is not None else 0)
        finally:
            await opened.__aexit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=62_000)
    parser.add_argument("--content-only", type=int, default=1_000, help="catalog movies without an embedding")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument(
        "--ranker-dim",
        type=int,
        default=SERVED_RANKER_DIM,
        help=f"served width of the ranking model (trained: {RankerParams().dim}); 0: no ranking model",
    )
    parser.add_argument(
        "--ranker-min-count",
        type=int,
        default=0,
        help="rank only movies with this many synthetic ratings (the trainer's rule is 5); 0: all",
    )
    parser.add_argument("--users", type=int, default=10_000, help="trained users in the model")
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="a published version's folder to serve (see above)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    rows, ranked = asyncio.run(run(args))
    print(
        f"Serving latency: {args.movies:,} movies ({args.movies - args.content_only:,} with {args.dim}-dim "
        f"embeddings; the ranking model, {args.ranker_dim}-dim, ranks {ranked:,}: "
        + (
            f"as trained, {args.model}), "
            if args.model
            else f"those with {args.ranker_min_count}+ synthetic ratings), "
            if args.ranker_min_count
            else "all, a worst case: the trainer ranks only movies with 5+ ratings), "
        )
        + f"{args.users:,} trained users, {args.requests} "
        "requests per row, end to end through "
        "RecommenderService (SQLite read included); "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}."
    )
    print()
    print(f"| {'operation':<46} | {'p50 ms':>8} | {'p99 ms':>8} | {'max ms':>8} | target p99 | ok |")
    print(f"|{'-' * 48}|---------:|---------:|---------:|-----------:|----|")
    for name, ms, target in rows:
        if len(ms) == 1:
            print(f"| {name:<46} | {ms[0] / 1000:>7.2f}s | {'':>8} | {'':>8} | {'':>10} |    |")
            continue
        p50, p99, mx = np.percentile(ms, 50), np.percentile(ms, 99), ms.max()
        ok = "" if target is None else ("yes" if p99 < target else "NO")
        tgt = "" if target is None else f"< {target:g} ms"
        print(f"| {name:<46} | {p50:8.3f} | {p99:8.3f} | {mx:8.3f} | {tgt:>10} | {ok:<2} |")
    print()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"Peak RSS of this process (the service, its catalogue and arrays, the benchmark): {peak:,.0f} MiB")
    print("Measured on a shared 2-core machine with other jobs running: timings are noisy, p99 most of all.")
    cmd = " ".join(["python -m benchmarks.bench_serving", *(argv if argv is not None else sys.argv[1:])])
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(f"Reproduce: OPENBLAS_NUM_THREADS={threads} .venv/bin/{cmd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
