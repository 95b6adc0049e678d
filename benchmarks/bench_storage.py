"""Throughput of confirmed ratings: Storage.upsert_rating on SQLite (a real file, WAL) and PostgreSQL.

Run: .venv/bin/python -m benchmarks.bench_storage [--ratings 10000] [--movies 9742] [--dir /tmp]
     [--postgres URL]   (default: $TEST_DATABASE_URL, e.g. from `eval "$(.ci/postgres.sh start)"`)

A rating counts once its ``upsert_rating`` call has returned (it is then durable against a killed
process: see recommender/persistence/storage). Rows: one task after another, and 100 concurrent
tasks (the bot's case: many members at once), for SQLite with synchronous=NORMAL (the default) and
FULL (fsync per commit), and for PostgreSQL (a pool of 5 connections, in a scratch database created
and dropped on the given server; the server's own durability settings). Also the time for the
trainer's read_member_ratings on each result. Wall-clock on whatever machine runs it; on a shared
machine the numbers are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from recommender.core.types import Movie
from recommender.persistence.storage import Storage, read_member_ratings


async def _run(
    location: Path | str, n: int, tasks: int, n_movies: int, synchronous: str
) -> tuple[float, np.ndarray]:
    async with Storage(location, synchronous=synchronous) as storage:  # type: ignore[arg-type]
        await storage.load_catalog("bench", [Movie(i, f"Movie {i}", 2000) for i in range(1, n_movies + 1)])
        rng = random.Random(0)
        plan = [
            (
                1_000_000_000_000_000 + rng.randrange(5_000),
                rng.randrange(1, n_movies + 1),
                rng.randint(1, 10) / 2,
            )
            for _ in range(n)
        ]
        latencies = np.zeros(n)

        async def worker(k: int) -> None:
            for j in range(k, n, tasks):
                user, movie, stars = plan[j]
                t = time.perf_counter()
                await storage.upsert_rating(user, movie, stars, guild_id=42)
                latencies[j] = time.perf_counter() - t

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(tasks)))
        elapsed = time.perf_counter() - start
        # every confirmed rating is there (last write per user/movie wins)
        expected = {(u, m): s for u, m, s in plan}
        assert await storage.count_ratings() == len(expected)
    return elapsed, latencies


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _timed_read(location: Path | str) -> tuple[int, float]:
    start = time.perf_counter()
    frame = read_member_ratings(location)
    return len(frame), (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000)
    parser.add_argument("--movies", type=int, default=9_742)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary SQLite files go")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL", ""), help="server URL")
    args = parser.parse_args()

    print(f"Storage.upsert_rating: {args.ratings:,} confirmed ratings per row, catalog of {args.movies:,}")
    print("wall-clock on a shared machine: noisy; the target is >= 2,000 confirmed ratings/s\n")
    print(f"{'backend':<22}{'tasks':>6}{'ratings/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    reads: list[tuple[str, int, float]] = []

    def row(label: str, location: Path | str, tasks: int, synchronous: str = "NORMAL") -> None:
        elapsed, lat = asyncio.run(_run(location, args.ratings, tasks, args.movies, synchronous))
        p50, p99 = np.percentile(lat, [50, 99]) * 1000
        rate = args.ratings / elapsed
        print(f"{label:<22}{tasks:>6}{rate:>11,.0f}{p50:>9.2f}{p99:>9.2f}{lat.max() * 1000:>9.2f}")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for synchronous in ("NORMAL", "FULL"):
            for tasks in (1, 100):
                path = Path(tmp) / f"bench-{synchronous}-{tasks}.sqlite3"
                row(f"sqlite {synchronous}", path, tasks, synchronous)
        reads.append(("sqlite", *_timed_read(Path(tmp) / "bench-NORMAL-100.sqlite3")))
    if args.postgres:
        for tasks in (1, 100):
            name = f"bench_{uuid.uuid4().hex[:12]}"
            asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
            url = urlunsplit(urlsplit(args.postgres)._replace(path=f"/{name}"))
            try:
                row("postgresql (pool 5)", url, tasks)
                if tasks == 100:
                    reads.append(("postgresql", *_timed_read(url)))
            finally:
                asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        print("postgresql: skipped (no --postgres URL and no TEST_DATABASE_URL)")
    print()
    for backend, rows, ms in reads:
        print(f"read_member_ratings ({backend}): {rows:,} rows in {ms:.0f} ms")
    command = f".venv/bin/python -m benchmarks.bench_storage --ratings {args.ratings} --movies {args.movies}"
    print(f"reproduce: {command}" + (" --postgres $TEST_DATABASE_URL" if args.postgres else ""))


if __name__ == "__main__":
    main()
