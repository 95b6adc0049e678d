"""``python -m bot --switch-dataset``: the dry run changes nothing, --yes switches after a backup and
keeps every member rating (moved, or kept aside), and --prepare-only's refusal names the command."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import bot.__main__ as cli
from recommender.core.config import Settings
from recommender.core.types import Movie
from recommender.persistence.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = 42, 43
STAR_WARS_100K, STAR_WARS_SMALL = 50, 260
UNMATCHED = 1682  # "Scream of Stone (Schrei aus Stein) (1991)": not in ml-latest-small


def _dump(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        tables = ("movies", "ratings", "hidden", "watchlist", "meta", "added_movies", "set_aside_ratings")
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def ml100k_bot(movielens_dir: Path, tmp_path: Path) -> tuple[Settings, int]:
    """A bot on ml-100k whose members rated, hid and listed movies, with one admin-added movie."""
    settings = Settings(
        data_dir=tmp_path / "data", movielens_dataset="ml-100k", movielens_path=movielens_dir / "ml-100k"
    )
    asyncio.run(cli.prepare_catalog(settings))

    async def members() -> int:
        async with Storage(settings.db_path) as storage:
            added = await storage.add_movie(Movie(0, "A Film From 2025", 2025, ("Drama",)), added_by=7)
            await storage.upsert_rating(ALICE, STAR_WARS_100K, 5.0, 1, rated_at=100.0)
            await storage.upsert_rating(ALICE, UNMATCHED, 3.0, 1, rated_at=101.0)
            await storage.upsert_rating(ALICE, added.movie_id, 4.0, 1, rated_at=102.0)
            await storage.upsert_rating(BOB, 1, 2.0, None, rated_at=103.0)  # Toy Story: id 1 in both
            await storage.hide(BOB, 2, hidden_at=5.0)  # GoldenEye: 2 in ml-100k, 10 in ml-latest-small
            await storage.add_to_watchlist(BOB, UNMATCHED, added_at=6.0)
            return added.movie_id

    return settings, asyncio.run(members())


def _run(settings: Settings, movielens_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(settings.data_dir),
        "BOT_DATA_DIR": str(settings.data_dir),
        "MOVIELENS_PATH": str(movielens_dir / "ml-latest-small"),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "--switch-dataset", "ml-latest-small", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_dry_run_then_switch_keeps_every_rating(ml100k_bot, movielens_dir):
    settings, added_id = ml100k_bot
    before = _dump(settings.db_path)

    dry = _run(settings, movielens_dir, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert (
        "Mapping ml-100k -> ml-latest-small" in dry.stderr and "Dry run: nothing was changed." in dry.stderr
    )
    said = " ".join(dry.stderr.split())
    assert "by title + year: 3 movies 2 ratings" in said and "carried by id: 0 movies 0 ratings" in said
    assert "unmapped (kept aside): 1 movies 1 ratings" in said
    assert "1 stay added" in dry.stderr
    report = settings.data_dir / "switch-ml-100k-to-ml-latest-small-unmapped.csv"
    assert report.read_text().splitlines()[1:] == [
        f"{UNMATCHED},Scream of Stone (Schrei aus Stein),1991,1,0,1"
    ]
    assert _dump(settings.db_path) == before
    assert not (settings.data_dir / "backups").exists()

    unconfirmed = _run(settings, movielens_dir)
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert _dump(settings.db_path) == before

    done = _run(settings, movielens_dir, "--yes")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "Backed up the database to" in done.stderr and "set MOVIELENS_DATASET=ml-latest-small" in done.stderr
    )
    assert "popular picks until a model trained on ml-latest-small" in done.stderr
    [backup] = (settings.data_dir / "backups").glob("bot-*.sqlite3")
    assert _dump(backup) == before  # taken before the switch

    after = _dump(settings.db_path)
    assert ("catalog_dataset", "ml-latest-small") in after["meta"]
    ratings = {(r[0], r[1]): r[2] for r in after["ratings"]}
    assert ratings == {(ALICE, STAR_WARS_SMALL): 5.0, (ALICE, added_id): 4.0, (BOB, 1): 2.0}
    assert [(r[0], r[1]) for r in after["hidden"]] == [(BOB, 10)]
    assert after["watchlist"] == [] and [r[0] for r in after["added_movies"]] == [added_id]
    aside = {(r[0], r[1], r[3]) for r in after["set_aside_ratings"]}
    assert aside == {(ALICE, "rating", UNMATCHED), (BOB, "watchlist", UNMATCHED)}
    assert len(after["movies"]) == 9742 + 1

    again = _run(settings, movielens_dir, "--dry-run")
    assert again.returncode == 1 and "already holds ml-latest-small" in again.stderr


def test_prepare_only_refusal_names_the_switch_command(ml100k_bot, movielens_dir, capsys):
    settings, _added = ml100k_bot
    before = _dump(settings.db_path)
    capsys.readouterr()
    env = {
        "BOT_DATA_DIR": str(settings.data_dir),
        "MOVIELENS_DATASET": "ml-latest-small",
        "MOVIELENS_PATH": str(movielens_dir / "ml-latest-small"),
    }
    assert cli.main(["--prepare-only"], env=env, worker=None, first_model=False) == 1
    err = capsys.readouterr().err
    assert "python -m bot --switch-dataset ml-latest-small --dry-run" in err
    assert _dump(settings.db_path) == before


def test_dry_run_and_yes_need_switch_dataset(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--dry-run"], env={})
    assert info.value.code == 2 and "--switch-dataset" in capsys.readouterr().err
