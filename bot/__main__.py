"""``python -m bot`` (what ``make run`` runs): prepare the data and a first model, then start the bot.

Steps: settings (a bad one exits 2 with the reason), logging (the token is redacted from every
record), PREPARE (dataset -> SQLite catalog with popularity -> a first model if the registry has
none), and only then the token check and the bot. ``--prepare-only`` stops after PREPARE.
``--switch-dataset NEW`` moves the catalogue and every member rating to another dataset
(``bot/switch_dataset.py``), after a ``--dry-run`` and with ``--yes``.
"""

from __future__ import annotations

import os

# Serving is a matvec and a small solve per request: a second BLAS thread buys nothing, and on a busy
# 2-core machine its spinning made a 500-rating fold-in ~30x slower (bench_serving). Set before numpy
# loads; the training child sizes its own threads (recommender/worker.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Final, Literal, TextIO

from recommender.core.config import ConfigError, Secret, Settings
from recommender.core.types import DATASETS
from recommender.pipeline.protocol import Epoch, Event, Start

if TYPE_CHECKING:
    from bot.client import MovieBot
    from bot.lifecycle import Start
    from recommender.pipeline.protocol import Event
    from recommender.serving.service import RecommenderService, Worker

#: ``worker=DEFAULT_WORKER``: the pipeline's TrainingWorker for the settings.
DEFAULT_WORKER: Final = "default"

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
    """Replace the secrets (bot token, TMDB key) wherever they would appear in a log record (message,
    arguments, traceback)."""

    def __init__(self, *secrets: Secret) -> None:
        super().__init__()
        self._values = [s.get() for s in secrets if s]

    def _clean(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "**********")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Never raises: a filter that raises turns one bad log call into an error at its call site."""
        if not self._values:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # Arguments that don't fit the format ("%s %s" with one): keep everything, as text, so
            # that neither the formatter nor logging's own error report prints the raw arguments.
            message = f"{self._text(record.msg)} (log arguments did not fit: {self._text(record.args)})"
        cleaned = self._clean(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            try:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            except Exception:
                record.exc_text = "(the traceback could not be formatted)"
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True

    @staticmethod
    def _text(value: object) -> str:
        try:
            return str(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def setup_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """One stderr handler on the root logger, with the token filter on the handler itself."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(settings.discord_token, settings.tmdb_api_key))
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
    """Dataset -> SQLite catalog with Bayesian popularity, unless already loaded. Returns its size.

    Another dataset than the stored catalogue's is refused while members have ratings (the message
    names ``--switch-dataset``, which moves them)."""
    from bot.switch_dataset import catalogue_rows
    from recommender.data.movielens import load_from_settings
    from recommender.persistence.storage import Storage

    _say(f"Loading the {settings.movielens_dataset} dataset…")
    data = await asyncio.to_thread(load_from_settings, settings, progress=True)
    async with Storage(settings.storage_location, backup_dir=settings.backup_dir) as storage:
        if await storage.catalog_dataset() == data.name and (stats := await storage.stats()).get("movies"):
            _say(f"Catalog already holds {data.name} ({stats['movies']:,} movies).")
            return int(stats["movies"])

        movies, popularity = await asyncio.to_thread(catalogue_rows, data)
        n = await storage.load_catalog(data.name, movies, popularity)
        _say(f"Loaded {n:,} movies of {data.name} into the catalog.")
        return n


def default_worker(settings: Settings) -> Worker | None:
    """The pipeline's TrainingWorker for these settings (None if it cannot be built here)."""
    try:
        from recommender.pipeline.worker import TrainingWorker
    except ImportError:
        log.warning("recommender.pipeline.worker is not available; /retrain is disabled")
        return None
    return TrainingWorker(settings)


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings, *, worker: Worker | Literal["default"] | None = DEFAULT_WORKER
) -> AsyncIterator[RecommenderService]:
    """Open storage, build the catalogue from it, load the current model off the event loop; the
    service and then storage are closed on exit."""
    from recommender.data.posters import PosterClient
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import Storage
    from recommender.serving.catalog import Catalog
    from recommender.serving.reload import load_current
    from recommender.serving.service import RecommenderService

    started = time.perf_counter()
    posters = PosterClient(  # off, and never sends a request, without TMDB_API_KEY
        settings.tmdb_api_key, api_url=settings.tmdb_api_url, image_url=settings.tmdb_image_url
    )
    async with (
        posters,
        Storage(settings.storage_location, backup_dir=settings.backup_dir) as storage,
    ):
        dataset = await storage.catalog_dataset() or settings.movielens_dataset
        registry = Registry(settings.models_dir)
        # The model's files are read and checked in a thread while the catalogue is read and built
        # here: start-up is then the longer of the two, not their sum (benchmarks/RESULTS.md).
        loading = asyncio.ensure_future(asyncio.to_thread(load_current, registry, dataset))
        try:
            movies = await storage.all_movies()
            added = [a.movie.movie_id for a in await storage.added_movies()]
            popularity = await storage.popularity()
            if dataset != settings.movielens_dataset:
                # Stored ratings refer to the stored catalogue, so its scale is the one to validate against.
                log.warning(
                    "the database holds the %s catalog but MOVIELENS_DATASET=%s; serving %s",
                    dataset,
                    settings.movielens_dataset,
                    dataset,
                )
            if not movies:
                log.warning(
                    "the movie catalog in %s is empty; run `python -m bot --prepare-only`", storage.label
                )
            # Autocomplete ranks near-ties by how well known a movie is (its rating count), not by how
            # well rated: "star" should offer Star Wars before an obscure, highly rated film.
            catalog = await asyncio.to_thread(Catalog, movies, {m: p[0] for m, p in popularity.items()})
            chosen = default_worker(settings) if isinstance(worker, str) else worker
            service = RecommenderService(
                storage,
                catalog,
                registry,
                DATASETS[dataset].scale,
                popularity=popularity,
                worker=chosen,
                dataset=dataset,
                added=added,
                posters=posters if posters.enabled else None,
            )
        except BaseException:
            loading.cancel()
            raise
        async with service:
            await service.reload_model_async(loading)
            log.info(
                "service ready in %.2f s: %d movies, model %s",
                time.perf_counter() - started,
                len(catalog),
                service.model_version or "none (popularity)",
            )
            yield service


async def _print_progress(event: Event) -> None:
    from recommender.pipeline.protocol import Start

    if isinstance(event, Epoch):
        loss, val = (float("nan") if v is None else v for v in (event.loss, event.val_loss))
        _say(f"  epoch {event.epoch}/{event.epochs}  loss {loss:.4f}  val_loss {val:.4f}")
    elif isinstance(event, Start):
        _say("  training started in the worker…")


async def ensure_model(service: RecommenderService) -> None:
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
    start: Start[MovieBot] | None = None,
    worker: Worker | Literal["default"] | None = DEFAULT_WORKER,
    first_model: bool = True,
) -> int:
    """PREPARE, then serve until Discord closes the connection or SIGTERM/SIGINT arrives.

    ``start`` defaults to ``bot.start(token)``; the process tests pass a simcord-backed one, so the
    signal handling, draining and closing below are exactly what production runs. ``worker``
    replaces the default TrainingWorker (None: no retraining) and ``first_model=False`` skips
    training a first model (both for tests).
    """
    await prepare_catalog(settings)
    async with open_service(settings, worker=worker) as service:
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
        # GC's reach so full collections over them don't stall the event loop.
        gc.collect()
        gc.freeze()
        async with create_bot(settings, service) as bot:
            stopped_by = await serve(bot, start)
        # Leaving the service's block closes storage: after the last interaction and the worker.
    log.info("bot exited cleanly%s", f" after {stopped_by}" if stopped_by else "")
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    start: Start[MovieBot] | None = None,
    worker: Worker | Literal["default"] | None = DEFAULT_WORKER,
    first_model: bool = True,
) -> int:
    """The CLI; the keywords go to :func:`run` (the process tests pass a simcord ``start``)."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="The movie recommender Discord bot.")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="prepare the dataset, catalog and a first model; don't start",
    )
    parser.add_argument(
        "--switch-dataset",
        metavar="NEW",
        choices=sorted(DATASETS),
        help="move the catalogue and every member rating to another MovieLens dataset",
    )
    parser.add_argument("--dry-run", action="store_true", help="with --switch-dataset: show the mapping only")
    parser.add_argument("--yes", action="store_true", help="with --switch-dataset: switch without asking")
    args = parser.parse_args(argv)
    if (args.dry_run or args.yes) and not args.switch_dataset:
        parser.error("--dry-run and --yes go with --switch-dataset NEW")
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        _say(f"Configuration error: {exc}")
        return EXIT_CONFIG
    setup_logging(settings)
    try:
        if args.switch_dataset:
            from bot.switch_dataset import switch_dataset

            return asyncio.run(
                switch_dataset(settings, args.switch_dataset, dry_run=args.dry_run, yes=args.yes, say=_say)
            )
        return asyncio.run(
            run(settings, prepare_only=args.prepare_only, start=start, worker=worker, first_model=first_model)
        )
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
