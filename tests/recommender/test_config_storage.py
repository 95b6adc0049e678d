"""Settings for storage and scale: DATABASE_URL, SHARD_IDS/SHARD_COUNT, BACKUP_KEEP_DAYS/BACKUP_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.core.config import ConfigError, Settings

URL = "postgresql://bot:s3cret-pw@db.internal:5432/moviebot"


def test_defaults_are_sqlite_no_shards_a_week_of_backups(tmp_path: Path) -> None:
    s = Settings.from_env({"BOT_DATA_DIR": str(tmp_path)})
    assert not s.database_url
    assert s.storage_location == tmp_path / "bot.sqlite3" == s.db_path
    assert (s.shard_ids, s.shard_count) == (None, None)
    assert s.backup_keep_days == 7
    assert s.backup_dir == tmp_path / "backups"


def test_database_url_is_a_secret_and_becomes_the_storage_location() -> None:
    s = Settings.from_env({"DATABASE_URL": f"  {URL} "})
    assert s.storage_location == URL
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.database_url)
    assert Settings.from_env({"DATABASE_URL": "postgres://h/db"}).storage_location == "postgres://h/db"


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://bot:s3cret-pw@host/db",
        "sqlite:///data/bot.sqlite3",
        "postgresql://bot:s3cret-pw@host:5432",  # no database name
        "postgresql://bot:s3cret-pw@:5432/db",  # no host
        "postgresql://bot:s3cret-pw@host:99999/db",
        "postgresql://bot:s3cret-pw@host:port/db",
    ],
)
def test_a_bad_database_url_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
        Settings.from_env({"DATABASE_URL": raw})
    assert "s3cret" not in str(caught.value)


def test_shards_are_parsed_and_sorted() -> None:
    s = Settings.from_env({"SHARD_IDS": "3, 1,2", "SHARD_COUNT": "4"})
    assert (s.shard_ids, s.shard_count) == ((1, 2, 3), 4)
    s = Settings.from_env({"SHARD_COUNT": "2"})  # every shard in this one process
    assert (s.shard_ids, s.shard_count) == (None, 2)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"SHARD_IDS": "0,1"}, "needs SHARD_COUNT"),
        ({"SHARD_IDS": "0,1", "SHARD_COUNT": "0"}, "at least 1"),
        ({"SHARD_IDS": "0,2", "SHARD_COUNT": "2"}, "between 0 and"),
        ({"SHARD_IDS": "-1", "SHARD_COUNT": "2"}, "between 0 and"),
        ({"SHARD_IDS": "0,0", "SHARD_COUNT": "2"}, "twice"),
        ({"SHARD_IDS": "0;1", "SHARD_COUNT": "2"}, "comma-separated"),
        ({"SHARD_COUNT": "two"}, "whole number"),
    ],
)
def test_bad_shards_are_refused_clearly(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)


def test_backup_settings(tmp_path: Path) -> None:
    s = Settings.from_env({"BACKUP_KEEP_DAYS": "30", "BACKUP_DIR": str(tmp_path / "b")})
    assert (s.backup_keep_days, s.backup_dir) == (30, tmp_path / "b")
    for bad in ("0", "-3", "a week"):
        with pytest.raises(ConfigError, match="BACKUP_KEEP_DAYS"):
            Settings.from_env({"BACKUP_KEEP_DAYS": bad})
