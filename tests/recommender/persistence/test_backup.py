"""Daily SQLite backups: online, atomic, pruned; a checked restore; a damaged file at start-up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.core.types import Movie
from recommender.persistence import backup
from recommender.persistence.errors import BackupUnsupported, StorageCorrupt, StorageError
from recommender.persistence.storage import Storage

ROOT = Path(__file__).resolve().parents[3]
MOVIES = [Movie(i, f"Movie {i} " + "x" * 200, 2000) for i in range(1, 401)]  # a few dozen pages
DAY = 86_400.0
NOW = 1_750_000_000.0


async def _db_with_ratings(path: Path, n: int = 3) -> None:
    async with Storage(path) as s:
        await s.load_catalog("ml-test", MOVIES)
        for movie in range(1, n + 1):
            await s.upsert_rating(7, movie, 4.0, None, rated_at=float(movie))


async def test_backup_while_the_bot_writes_is_a_whole_consistent_copy(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    async with Storage(db) as s:
        await s.load_catalog("ml-test", MOVIES)
        await s.upsert_rating(7, 1, 4.0, None)
        made = backup.backup_now(db, now=NOW)  # the bot's connection is open, WAL not checkpointed
        await s.upsert_rating(7, 2, 5.0, None)  # after the snapshot: not in it
    assert made == tmp_path / "backups" / "bot-20250615T150640Z.sqlite3"
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temp file left
    backup.verify(made)
    async with Storage(made, read_only=True) as copy:
        assert [r.movie_id for r in await copy.user_ratings(7)] == [1]
        assert len(await copy.all_movies()) == len(MOVIES)
    assert backup.newest_backup(tmp_path / "backups") == made


async def test_prune_keeps_recent_days_and_always_the_newest(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    await _db_with_ratings(db)
    keep = tmp_path / "keep"
    made = [backup.backup_now(db, keep, now=NOW - days * DAY) for days in (10, 8, 6.5, 1, 0)]
    stale_tmp = keep / ".bot-20250101T000000Z.sqlite3.tmp"
    stale_tmp.write_bytes(b"half")
    os.utime(stale_tmp, (NOW - 2 * DAY, NOW - 2 * DAY))
    removed = backup.prune_backups(keep, keep_days=7, now=NOW)
    assert sorted(removed) == sorted([made[0], made[1], stale_tmp])
    assert sorted(keep.iterdir()) == made[2:]
    # the bot was down for weeks: the only backup is old, and stays
    assert backup.prune_backups(keep, keep_days=1, now=NOW + 30 * DAY) == made[2:4]
    assert list(keep.iterdir()) == [made[4]]
    with pytest.raises(ValueError):
        backup.prune_backups(keep, keep_days=0)


async def test_the_daily_step_backs_up_once_a_day_across_restarts_and_prunes(tmp_path: Path) -> None:
    db, keep = tmp_path / "bot.sqlite3", tmp_path / "backups"
    assert backup.daily_backup(db, keep, 7, now=NOW) is None  # no database yet: nothing to copy
    await _db_with_ratings(db)
    first = backup.daily_backup(db, keep, 7, now=NOW)
    assert first is not None and first.is_file()
    # a restart an hour later (the loop's first tick runs at start-up): not due yet
    assert backup.daily_backup(db, keep, 7, now=NOW + 3600) is None
    due = [backup.daily_backup(db, keep, 2, now=NOW + d * DAY + 60) for d in (1, 2, 3)]
    assert all(p is not None for p in due)
    # kept 2 days: the first backup (3 days old) is gone, the ones from the last 2 days stay
    assert sorted(keep.iterdir()) == due
    assert backup.daily_backup("postgresql://u@h/db", keep, 7) is None  # the server's job


def test_postgres_backups_are_the_servers_job() -> None:
    with pytest.raises(BackupUnsupported, match="pg_dump"):
        backup.backup_now("postgresql://bot@127.0.0.1/moviebot")


async def test_restore_checks_the_backup_refuses_while_open_and_keeps_the_old_file(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    await _db_with_ratings(db, 2)
    made = backup.backup_now(db, now=NOW)
    async with Storage(db) as s:
        await s.upsert_rating(7, 3, 1.0, None)  # a change the restore will undo
        with pytest.raises(StorageError, match="is the bot running"):
            backup.restore(made, db, now=NOW)
        assert [r.movie_id for r in await s.user_ratings(7)] == [3, 2, 1]  # untouched
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(made.read_bytes()[: 4096 * 3])
    with pytest.raises(StorageCorrupt):
        backup.restore(broken, db, now=NOW)
    aside = backup.restore(made, db, now=NOW)
    assert aside == tmp_path / "bot.sqlite3.replaced-20250615T150640Z"
    async with Storage(aside, read_only=True) as old:
        assert len(await old.user_ratings(7)) == 3  # the replaced data is kept whole
    async with Storage(db) as s:
        assert [r.movie_id for r in await s.user_ratings(7)] == [2, 1]


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _truncate(path: Path) -> None:
    asyncio.run(_db_with_ratings(path, 50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


async def _open(db: Path) -> None:
    async with Storage(db):
        pass


async def _count(db: Path) -> int:
    async with Storage(db) as s:
        return len(await s.user_ratings(7))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_names_the_newest_backup(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "bot.sqlite3"
    asyncio.run(_db_with_ratings(db))
    older = backup.backup_now(db, now=NOW - DAY)
    newest = backup.backup_now(db, now=NOW)
    if damage == "garbage":
        _garbage(db)
    else:
        _truncate(db)
    with pytest.raises(StorageCorrupt) as caught:
        asyncio.run(_open(db))
    message = str(caught.value)
    assert "damaged" in message and str(newest) in message and str(older) not in message
    assert f"python -m recommender.persistence.backup --restore {newest} --db {db}" in message
    # the command in the message works, and the bot starts again
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "recommender.persistence.backup", "--restore", str(newest), "--db", str(db)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Restored" in done.stdout
    assert asyncio.run(_count(db)) == 3


async def test_a_damaged_database_without_backups_says_so(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    _garbage(db)
    before = db.read_bytes()
    with pytest.raises(StorageCorrupt, match="No backup was found"):
        async with Storage(db, backup_dir=tmp_path / "elsewhere"):
            pass
    assert db.read_bytes() == before  # start-up never "repairs" the file it could not read


def test_backup_cli_takes_and_lists_backups(tmp_path: Path) -> None:
    asyncio.run(_db_with_ratings(tmp_path / "bot.sqlite3"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(tmp_path), "BACKUP_DIR": ""}
    env.pop("DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "recommender.persistence.backup", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    made = run("--now")
    assert made.returncode == 0, made.stderr
    listed = run("--list")
    assert listed.stdout.split() == [made.stdout.strip()]
    assert Path(made.stdout.strip()).parent == tmp_path / "backups"
