"""``python -m bot``: configuration errors, the order PREPARE -> token check, token redaction."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import bot.__main__ as cli
from recommender.core.config import Secret, Settings
from tests.bot.fakes import FakeService

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789ABCD"


def test_bad_configuration_exits_2_with_the_reason():
    env = {"PATH": "/usr/bin:/bin", "MOVIELENS_DATASET": "ml-999k", "HOME": "/tmp"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Configuration error" in proc.stderr and "MOVIELENS_DATASET" in proc.stderr


@pytest.fixture
def prepared(monkeypatch, tmp_path):
    """PREPARE replaced by recorders, so these tests check the order and the exits, not the data."""
    steps: list[str] = []
    service = FakeService()

    async def prepare_catalog(settings):
        steps.append("catalog")
        return 3

    @contextlib.asynccontextmanager
    async def open_service(settings, **kwargs):
        steps.append("service")
        yield service

    monkeypatch.setattr(cli, "prepare_catalog", prepare_catalog)
    monkeypatch.setattr(cli, "open_service", open_service)
    return steps, service, {"BOT_DATA_DIR": str(tmp_path)}


def test_without_a_token_everything_is_prepared_then_it_says_how_to_get_one(prepared, capsys):
    steps, service, env = prepared
    assert cli.main([], env=env) == 1
    err = capsys.readouterr().err
    assert steps == ["catalog", "service"]
    assert [c for c in service.calls if c[0] == "retrain"], "a first model is trained before the token check"
    assert "DISCORD_TOKEN is empty" in err and "Reset Token" in err and "DISCORD_TOKEN=" in err
    assert "applications.commands" in err


def test_prepare_only_stops_before_the_bot(prepared, capsys, monkeypatch):
    steps, service, env = prepared
    service.model_version = "v1"  # a model exists: no training
    started = []
    monkeypatch.setattr("bot.client.create_bot", lambda *a, **k: started.append(a))
    assert cli.main(["--prepare-only"], env={**env, "DISCORD_TOKEN": TOKEN}) == 0
    assert steps == ["catalog", "service"] and not started
    assert not [c for c in service.calls if c[0] == "retrain"]
    assert "Prepared" in capsys.readouterr().err


def test_the_token_never_reaches_a_log_line():
    settings = Settings(discord_token=Secret(TOKEN), log_level="DEBUG")
    out = io.StringIO()
    cli.setup_logging(settings, stream=out)
    log = logging.getLogger("bot.test")
    log.info("connecting with %s", TOKEN)
    log.debug(f"header Authorization: Bot {TOKEN}")
    try:
        raise RuntimeError(f"login failed for {TOKEN}")
    except RuntimeError:
        log.exception("boom")
    log.info("settings: %r", settings)
    text = out.getvalue()
    assert TOKEN not in text
    assert text.count("**********") >= 4  # the three lines above plus the traceback
    assert "connecting with" in text and "RuntimeError" in text


async def test_prepare_catalog_loads_ml100k_once(movielens_dir, tmp_path, capsys):
    from recommender.persistence.storage import Storage

    settings = Settings(
        data_dir=tmp_path, movielens_dataset="ml-100k", movielens_path=movielens_dir / "ml-100k"
    )
    assert await cli.prepare_catalog(settings) == 1682
    async with Storage(settings.db_path) as storage:
        assert await storage.catalog_dataset() == "ml-100k"
        popularity = await storage.popularity()
        toy = await storage.get_movie(1)
    assert toy is not None and toy.title.startswith("Toy Story") and toy.year == 1995
    count, mean, score = popularity[50]  # Star Wars: the most rated movie of ml-100k
    assert count == 583 and 4.0 < mean < 4.5 and 3.5 < score <= mean
    capsys.readouterr()
    assert await cli.prepare_catalog(settings) == 1682
    assert "already holds ml-100k" in capsys.readouterr().err


@pytest.mark.slow
def test_python_m_bot_prepares_for_real_then_asks_for_a_token(movielens_dir, tmp_path):
    """The real wiring: dataset -> catalog -> service with a published model -> the token message."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "MOVIELENS_DATASET": "ml-100k",
        "MOVIELENS_PATH": str(movielens_dir / "ml-100k"),
        "LOG_LEVEL": "INFO",
    }
    # A tiny first model (one epoch, 50 users), so that PREPARE has nothing to train.
    trained = subprocess.run(
        [sys.executable, "train.py", "--no-dotenv", "--epochs", "1", "--max-users", "50", "--threads", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Loaded 1,682 movies of ml-100k" in proc.stderr
    assert "Serving model" in proc.stderr
    assert "DISCORD_TOKEN is empty" in proc.stderr and "Reset Token" in proc.stderr


async def _stored_catalog(db_path: Path) -> tuple[str | None, int, int]:
    from recommender.persistence.storage import Storage

    async with Storage(db_path) as storage:
        stats = await storage.stats()
        return await storage.catalog_dataset(), int(stats.get("movies", 0)), int(stats.get("ratings", 0))


def test_switching_datasets_with_member_ratings_present_is_refused(movielens_dir, tmp_path, capsys):
    """ml-100k's movie ids mean other movies in ml-latest-small: members' ratings would point at the
    wrong films, so --prepare-only refuses, says why, and leaves the catalogue as it was."""
    import asyncio

    from recommender.persistence.storage import Storage

    first = Settings(data_dir=tmp_path, movielens_dataset="ml-100k", movielens_path=movielens_dir / "ml-100k")
    asyncio.run(cli.prepare_catalog(first))

    async def rate() -> None:
        async with Storage(first.db_path) as storage:
            await storage.upsert_rating(42, 50, 5.0, 1)

    asyncio.run(rate())
    capsys.readouterr()
    env = {
        "BOT_DATA_DIR": str(tmp_path),
        "MOVIELENS_DATASET": "ml-latest-small",
        "MOVIELENS_PATH": str(movielens_dir / "ml-latest-small"),
    }
    assert cli.main(["--prepare-only"], env=env, worker=None, first_model=False) == 1
    err = capsys.readouterr().err
    assert "Can't prepare the bot" in err and "ml-100k" in err
    assert asyncio.run(_stored_catalog(first.db_path)) == ("ml-100k", 1682, 1)
