"""``python -m bot`` (what ``make run`` runs): prepare the data and a first model, then start the bot.

Steps: settings (a bad one exits 2 with the reason), logging (the token is redacted from every
record), PREPARE (dataset -> SQLite catalog with popularity -> a first model if the registry has
none), and only then the token check and the bot. ``--prepare-only`` stops after PREPARE.
"""

from __future__ import annotations

import os

# Serving is a matvec and a small solve per request: a second BLAS thread buys nothing, and on a busy
# 2-core machine its spinning made a 500-rating fold-in ~30x slower (bench_serving). Set before numpy
# loads; the training child sizes its own threads (recommender/worker.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import gc
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recommender.core.config import ConfigError, Secret, Settings
from recommender.pipeline.protocol import Epoch, Event, Start

if TYPE_CHECKING:
    from bot.client import MovieBot
    from bot.lifecycle import Start

log = logging.getLogger("bot")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

NO_TOKEN_HELP = """\
Everything is prepared, but DISCORD_TOKEN is empty, so the bot can't log in to Discord.

To get a bot token:
  1. Open https://discord.com/developers/applications and press "New Application".
  2. In the "Bot" tab press "Reset Token" and copy the token.
  3. Put it in .env (copy .env.example):   DISCORD_TOKEN=...
  4. Invite the bot: OAuth2 -> URL Generator, scopes "bot" and "applications.commands".
Then run `make run` again. Keep the token secret; the bot never logs it."""


class RedactSecrets(logging.Filter):
    """Replace the token wherever it would appear in a log record (message, arguments, traceback)."""

    def __init__(self, *secrets: Secret) -> None:
        super().__init__()
        self._values = [s.get() for s in secrets if s]

    def _clean(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "**********")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def setup_logging(settings: Settings, stream: Any = None) -> logging.Handler:
    """One stderr handler on the root logger, with the token filter on the handler itself."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(settings.discord_token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # discord.py's HTTP/gateway debug output is very chatty; keep it at INFO unless asked.
    logging.getLogger("discord").setLevel(max(logging.INFO, root.level))
    return handler


def _say(message: str) -> None:
    """User-facing progress of the CLI (stderr, so stdout stays clean)."""
    print(message, file=sys.stderr, flush=True)


async def prepare_catalog(settings: Settings) -> int:
    """Dataset -> SQLite catalog with Bayesian popularity, unless already loaded. Returns its size."""
    from recommender.core.types import Movie
    from recommender.data.movielens import load_from_settings
    from recommender.data.popularity import bayesian_popularity
    from recommender.persistence.storage import Storage

    _say(f"Loading the {settings.movielens_dataset} dataset…")
    data = await asyncio.to_thread(load_from_settings, settings, progress=True)
    async with Storage(settings.db_path) as storage:
        if await storage.catalog_dataset() == data.name and (stats := await storage.stats()).get("movies"):
            _say(f"Catalog already holds {data.name} ({stats['movies']:,} movies).")
            return int(stats["movies"])

        import pandas as pd

        def build() -> tuple[list[Movie], dict[int, tuple[int, float, float]]]:
            pop = bayesian_popularity(data.ratings)
            popularity = {
                int(mid): (int(row["count"]), float(row["mean"]), float(row["score"]))
                for mid, row in pop.iterrows()
            }
            movies = [
                Movie(
                    int(r.movie_id), str(r.title), None if pd.isna(r.year) else int(r.year), tuple(r.genres)
                )
                for r in data.movies.itertuples(index=False)
            ]
            return movies, popularity

        movies, popularity = await asyncio.to_thread(build)
        n = await storage.load_catalog(data.name, movies, popularity)
        _say(f"Loaded {n:,} movies of {data.name} into the catalog.")
        return n


async def _print_progress(event: Event) -> None:
    if isinstance(event, Epoch):
        loss, val = (float("nan") if v is None else v for v in (event.loss, event.val_loss))
        _say(f"  epoch {event.epoch}/{event.epochs}  loss {loss:.4f}  val_loss {val:.4f}")
    elif isinstance(event, Start):
        _say("  training started in the worker…")


async def ensure_model(service: Any) -> None:
    """Train and publish a first model when the registry has none."""
    if service.model_version is not None:
        _say(f"Serving model {service.model_version}.")
        return
    _say("No trained model yet: training a first one (this takes a minute or two)…")
    began = time.perf_counter()
    done = await service.retrain(_print_progress, force=False)
    if done.published:
        _say(f"Published model {done.version} in {time.perf_counter() - began:.0f} s.")
    else:
        _say(f"The first training did not publish a model: {done.reason}. Serving popular picks.")


async def run(
    settings: Settings,
    *,
    prepare_only: bool,
    start: Start | None = None,
    worker: Any = None,
    first_model: bool = True,
) -> int:
    """PREPARE, then serve until Discord closes the connection or SIGTERM/SIGINT arrives.

    ``start`` defaults to ``bot.start(token)``; the process tests pass a simcord-backed one, so the
    signal handling, draining and closing below are exactly what production runs. ``worker``
    replaces the service's default TrainingWorker and ``first_model=False`` skips training a first
    model (both for tests).
    """
    from recommender.serving.service import RecommenderService

    await prepare_catalog(settings)
    async with await RecommenderService.open(settings, worker=worker) as service:
        if first_model:
            await ensure_model(service)
        if prepare_only:
            _say("Prepared: dataset, catalog and model are ready (--prepare-only, not starting the bot).")
            return EXIT_OK
        if start is None:
            if not settings.discord_token:
                _say(NO_TOKEN_HELP)
                return EXIT_FAILED
            token = settings.discord_token.get()

            async def start(bot: MovieBot) -> None:
                await bot.start(token)

        from bot.client import create_bot
        from bot.lifecycle import serve

        # The catalog and start-up objects live for the whole run: move them out of the cyclic
        # GC's reach so full collections (measured at ~200 ms here) don't stall the event loop.
        gc.collect()
        gc.freeze()
        async with create_bot(settings, service) as bot:
            stopped_by = await serve(bot, start)
        # Leaving the service's block closes storage: after the last interaction and the worker.
    log.info("bot exited cleanly%s", f" after {stopped_by}" if stopped_by else "")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None, **run_options: Any) -> int:
    """The CLI. ``run_options`` go to :func:`run` (the process tests pass a simcord ``start``)."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="The movie recommender Discord bot.")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="prepare the dataset, catalog and a first model; don't start",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        _say(f"Configuration error: {exc}")
        return EXIT_CONFIG
    setup_logging(settings)
    try:
        return asyncio.run(run(settings, prepare_only=args.prepare_only, **run_options))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        from recommender.data.movielens import DatasetError
        from recommender.persistence.storage import StorageError

        if isinstance(exc, DatasetError | StorageError):
            _say(f"Can't prepare the bot: {exc}")
            return EXIT_FAILED
        import discord

        if isinstance(exc, discord.LoginFailure):
            _say("Discord rejected DISCORD_TOKEN. Reset it in the Developer Portal (Bot -> Reset Token).")
            return EXIT_FAILED
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            _say("Discord asks for privileged intents, which this bot doesn't use; please report this.")
            return EXIT_FAILED
        log.exception("the bot stopped with an error")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
