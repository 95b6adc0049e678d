"""Settings: built from a mapping (no .env needed), validated with clear errors, token kept secret."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from recommender.core.config import ConfigError, Secret, Settings

TOKEN = "MTA" + "x" * 56 + ".Gabcde.secretsecretsecretsecret"


def test_defaults_put_all_state_under_one_data_dir() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("data")
    assert s.movielens_dataset == "ml-latest-small"
    assert s.db_path.parent == s.cache_dir.parent == s.models_dir.parent == s.data_dir
    assert s.dataset_base_url == "https://files.grouplens.org/datasets/movielens"
    assert not s.discord_token


def test_values_are_read_and_typed(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DISCORD_TOKEN": TOKEN,
            "BOT_DATA_DIR": str(tmp_path),
            "MOVIELENS_DATASET": "ml-100k",
            "MOVIELENS_MIRROR": "file:///srv/mirror/",
            "DEV_GUILD_ID": "123456789012345678",
            "ADMIN_ROLE_ID": "42",
            "ADMIN_CHANNEL_ID": "555666777888999000",
            "RETRAIN_INTERVAL_HOURS": "0.5",
            "RETRAIN_MIN_NEW_RATINGS": "10",
            "LOG_LEVEL": "debug",
            "MOVIENIGHT_MINUTES": "90",
        }
    )
    assert s.discord_token.get() == TOKEN
    assert s.db_path == tmp_path / "bot.sqlite3"
    assert s.dataset_base_url == "file:///srv/mirror"
    assert (s.dev_guild_id, s.admin_role_id) == (123456789012345678, 42)
    assert s.admin_channel_id == 555666777888999000
    assert s.retrain_interval_hours == 0.5 and s.retrain_min_new_ratings == 10
    assert s.log_level == "DEBUG"
    assert s.movienight_minutes == 90
    assert Settings.from_env({}).movienight_minutes == 60


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MOVIELENS_DATASET": "ml-2b"}, "MOVIELENS_DATASET='ml-2b' is not a MovieLens dataset I know"),
        ({"MOVIELENS_MIRROR": "ftp://x"}, "MOVIELENS_MIRROR must be an http(s):// or file:// URL"),
        ({"MOVIELENS_PATH": "/nonexistent/ml"}, "MOVIELENS_PATH='/nonexistent/ml' does not exist"),
        ({"DEV_GUILD_ID": "abc"}, "DEV_GUILD_ID must be a whole number, got 'abc'"),
        ({"ADMIN_ROLE_ID": "-3"}, "ADMIN_ROLE_ID must be at least 1"),
        ({"ADMIN_CHANNEL_ID": "#admins"}, "ADMIN_CHANNEL_ID must be a whole number"),
        ({"RETRAIN_INTERVAL_HOURS": "nan"}, "RETRAIN_INTERVAL_HOURS must be greater than 0"),
        ({"RETRAIN_INTERVAL_HOURS": "0"}, "RETRAIN_INTERVAL_HOURS must be greater than 0"),
        ({"RETRAIN_MIN_NEW_RATINGS": "0"}, "RETRAIN_MIN_NEW_RATINGS must be at least 1"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be DEBUG, INFO"),
        ({"MOVIENIGHT_MINUTES": "0"}, "MOVIENIGHT_MINUTES must be at least 1"),
        ({"MOVIENIGHT_MINUTES": "1441"}, "MOVIENIGHT_MINUTES must be at most 1440 (a day)"),
        ({"MOVIENIGHT_MINUTES": "soon"}, "MOVIENIGHT_MINUTES must be a whole number"),
    ],
)
def test_bad_values_raise_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert message in str(info.value)


def test_malformed_token_error_does_not_echo_it() -> None:
    bad = "abc def " + "s3cr3t" * 10
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DISCORD_TOKEN": bad})
    assert "s3cr3t" not in str(info.value)
    assert "Reset Token" in str(info.value)


def test_token_never_appears_in_repr_str_logs_or_pickles(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert TOKEN not in repr(s) and TOKEN not in str(s) and TOKEN not in f"{s.discord_token}"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s token: %s", s, s.discord_token)
        logging.getLogger("test").info("settings %r", s)
    assert TOKEN not in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(s.discord_token)


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MOVIELENS_DATASET=ml-100k\nRETRAIN_MIN_NEW_RATINGS=7\n")
    monkeypatch.setenv("RETRAIN_MIN_NEW_RATINGS", "9")
    monkeypatch.delenv("MOVIELENS_DATASET", raising=False)
    s = Settings.from_env(dotenv=env_file)
    assert s.movielens_dataset == "ml-100k"
    assert s.retrain_min_new_ratings == 9


def test_secret_equality_and_truthiness() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert not Secret("") and Secret("x")
