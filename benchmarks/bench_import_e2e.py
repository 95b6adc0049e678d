"""/import of a 5,000-row Letterboxd file end to end: the command, the service, the SQLite storage.

The bot runs in discord.py under simcord (no network); the service is the real
``RecommenderService`` over a SQLite file holding the offline ml-latest-small catalogue, and the
file is bench_import's Letterboxd ratings.csv (popular movies drawn more often, 3% titles the
catalogue lacks, 2% a year off, 5% unrated). Each run imports into a new member, so every matched
movie is a real insert; the timed span is ``member.slash("import", file=...)`` until the reply is
sent (download from the fake CDN, parse, match, one transaction, the reply with its attachment).
Beside it: the service's ``import_ratings`` alone, and ``parse_import`` alone.

    .venv/bin/python -m benchmarks.bench_import_e2e [--rows 5000] [--repeat 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def run(args: argparse.Namespace) -> None:
    import simcord

    from benchmarks.bench_import import _letterboxd
    from bot.client import create_bot
    from recommender.core.config import Settings
    from recommender.data.movielens import load_movielens, movies_from_frame
    from recommender.data.popularity import bayesian_popularity
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import Storage
    from recommender.serving import importing
    from recommender.serving.catalog import Catalog
    from recommender.serving.service import RecommenderService

    root = args.data or Path(
        os.environ.get("MOVIELENS_TEST_DATA", ROOT.parent / "shared" / "data" / "movielens")
    )
    data = load_movielens("ml-latest-small", cache_dir=Path("/tmp"), local_path=root / "ml-latest-small")
    movies = movies_from_frame(data.movies)
    pop = bayesian_popularity(data.ratings)
    table = {int(m): (int(r["count"]), float(r["mean"]), float(r["score"])) for m, r in pop.iterrows()}
    rng = random.Random(0)
    weights = [float(table.get(m.movie_id, (0,))[0]) + 1.0 for m in movies]
    payload = _letterboxd(movies, weights, args.rows, rng)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(data_dir=folder, movielens_dataset="ml-latest-small")
        async with Storage(folder / "bot.sqlite3") as storage:
            await storage.load_catalog("ml-latest-small", movies, table)
            catalog = Catalog(movies, {m: p[0] for m, p in table.items()})
            service = RecommenderService(
                storage, catalog, Registry(folder / "models"), data.scale, popularity=table
            )
            bot = create_bot(settings, service, sync_commands=True)
            command: list[float] = []
            direct: list[float] = []
            parse: list[float] = []
            reply = ""
            async with simcord.run(bot) as env:
                channel = env.create_guild("Bench").create_text_channel("movies")
                for i in range(args.repeat):
                    member = env.guild.add_member(env.create_user(f"member{i}"))
                    start = time.perf_counter()
                    result = await member.slash(channel, "import", file=("ratings.csv", payload))
                    command.append(time.perf_counter() - start)
                    reply = (result.followups[0] if result.followups else result.response).content
                    bot.cooldowns.reset()  # /import allows 3 per 10 minutes per member; these are new members
                for i in range(args.repeat):
                    start = time.perf_counter()
                    await service.import_ratings(10_000 + i, payload)
                    direct.append(time.perf_counter() - start)
                match = importing.import_catalog(catalog, data.scale)
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    importing.parse(payload, match)
                    parse.append(time.perf_counter() - start)
            await service.close()

    size = f"{len(payload) / 1024:,.0f} KiB"
    print(f"ml-latest-small: {len(movies):,} movies; file: {args.rows:,} Letterboxd rows, {size}")
    print(f"reply: {reply.splitlines()[0]}")
    print()
    row = "| {:<56} | {:>7} | {:>8} |"
    print(row.format("span", "best s", "median s"))
    print("|" + "|".join("-" * (w + 2) for w in (56, 7, 8)) + "|")
    for name, times in (
        ("/import command through discord.py, service, SQLite", command),
        ("service.import_ratings (parse, match, one transaction)", direct),
        ("parse_import with Catalog.lookup (no storage)", parse),
    ):
        print(row.format(name, f"{min(times):.3f}", f"{statistics.median(times):.3f}"))
    print(f"\n{args.repeat} runs each, each into a new member; load {os.getloadavg()[0]:.1f}.")
    print(
        "Reproduce with:\n  .venv/bin/python -m benchmarks.bench_import_e2e"
        + (f" --rows {args.rows}" if args.rows != 5_000 else "")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, help="folder holding ml-latest-small/ (default: the offline copy)"
    )
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
