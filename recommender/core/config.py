"""Settings from the environment and `.env`, validated once in ``main()`` and passed down.

Nothing here runs at import time: tests build :class:`Settings` from a plain mapping and need no
``.env`` file. The bot token is wrapped in :class:`Secret` so that it never shows up in a ``repr``,
a log line or a traceback's locals.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from recommender.core.types import DATASETS

__all__ = ["MOVIENIGHT_MAX_MINUTES", "ConfigError", "Secret", "Settings"]

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
TMDB_API_URL = "https://api.themoviedb.org/3"
TMDB_IMAGE_URL = "https://image.tmdb.org/t/p/w342"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Secret:
    """A string that refuses to be printed. Use :meth:`get` at the single place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # never pickle the token into a worker process by accident
        raise TypeError("Secret values cannot be pickled")


def _int(env: Mapping[str, str], name: str, default: int | None, *, minimum: int | None = None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value > minimum:  # also rejects NaN
        raise ConfigError(f"{name} must be greater than {minimum}, got {raw!r}")
    return value


def _database_url(env: Mapping[str, str]) -> Secret:
    """``DATABASE_URL``: empty (SQLite under BOT_DATA_DIR) or ``postgresql://user:pass@host:port/db``.
    It may hold a password, so it is a :class:`Secret` and errors never echo it."""
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return Secret("")
    shape = "DATABASE_URL must look like postgresql://user:password@host:5432/dbname"
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{shape} (only PostgreSQL is supported; leave it empty for SQLite)")
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if not parts.hostname or not port_ok or not parts.path.strip("/"):
        raise ConfigError(f"{shape} (a host, an optional port and a database name are needed)")
    return Secret(raw)


def _shards(env: Mapping[str, str]) -> tuple[tuple[int, ...] | None, int | None]:
    """``SHARD_IDS`` (comma-separated) of ``SHARD_COUNT``: the shards this process runs."""
    count = _int(env, "SHARD_COUNT", None, minimum=1)
    raw = env.get("SHARD_IDS", "").strip()
    if not raw:
        return None, count
    if count is None:
        raise ConfigError("SHARD_IDS needs SHARD_COUNT (the total number of shards across processes)")
    try:
        ids = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"SHARD_IDS must be comma-separated whole numbers like 0,1, got {raw!r}") from None
    if len(set(ids)) != len(ids):
        raise ConfigError(f"SHARD_IDS lists a shard twice: {raw!r}")
    if any(not 0 <= i < count for i in ids):
        raise ConfigError(f"SHARD_IDS must be between 0 and SHARD_COUNT - 1 ({count - 1}), got {raw!r}")
    return tuple(sorted(ids)), count


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s):// URL, got {raw!r}")
    return raw.rstrip("/")


#: The longest a movie night may stay open (a day), for the setting and the command's option alike.
MOVIENIGHT_MAX_MINUTES = 24 * 60


def _movienight_minutes(env: Mapping[str, str]) -> int:
    minutes = _int(env, "MOVIENIGHT_MINUTES", 60, minimum=1) or 60
    if minutes > MOVIENIGHT_MAX_MINUTES:
        raise ConfigError(
            f"MOVIENIGHT_MINUTES must be at most {MOVIENIGHT_MAX_MINUTES} (a day), got {minutes}"
        )
    return minutes


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot, the service and the trainer are configured with."""

    discord_token: Secret = field(default_factory=lambda: Secret(""))
    data_dir: Path = Path("data")
    movielens_dataset: str = "ml-latest-small"
    movielens_mirror: str | None = None
    movielens_path: Path | None = None
    dev_guild_id: int | None = None
    admin_role_id: int | None = None
    # Where scheduled retrains (and runs recovered after a restart) post their results; None: nowhere.
    admin_channel_id: int | None = None
    retrain_interval_hours: float = 6.0
    retrain_min_new_ratings: int = 50
    log_level: str = "INFO"
    # Abuse limits on top of the per-command cooldowns: commands per minute per member, per server.
    user_commands_per_minute: int = 30
    guild_commands_per_minute: int = 120
    # PostgreSQL instead of the SQLite file (several processes share it); empty = SQLite.
    database_url: Secret = field(default_factory=lambda: Secret(""))
    # Discord shards of this process (None: discord.py decides), out of shard_count in total.
    shard_ids: tuple[int, ...] | None = None
    shard_count: int | None = None
    # Daily SQLite backups: how many days to keep, and where (None: <data_dir>/backups).
    backup_keep_days: int = 7
    backup_location: Path | None = None
    # Posters from TMDB: off (no request ever made) while the key is empty. A v3 API key or a v4
    # read access token; the URLs are settings so tests can point them at a loopback server.
    tmdb_api_key: Secret = field(default_factory=lambda: Secret(""))
    tmdb_api_url: str = TMDB_API_URL
    tmdb_image_url: str = TMDB_IMAGE_URL
    # /movienight: minutes members have to join before the bot picks by itself (the command's
    # `minutes` option overrides it per night).
    movienight_minutes: int = 60

    # Derived locations: all state lives under data_dir.
    @property
    def db_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"

    @property
    def storage_location(self) -> Path | str:
        """What ``Storage`` and ``read_member_ratings`` take: the PostgreSQL URL, else the SQLite file."""
        return self.database_url.get() or self.db_path

    @property
    def backup_dir(self) -> Path:
        return self.backup_location or self.data_dir / "backups"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def dataset_base_url(self) -> str:
        return (self.movielens_mirror or GROUPLENS_BASE_URL).rstrip("/")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, dotenv: Path | str | None = ".env"
    ) -> Settings:
        """Build settings from ``env`` (default: ``os.environ`` over the values of ``dotenv``).

        Values already in the environment win over ``.env``, as python-dotenv does by default.
        """
        if env is None:
            merged: dict[str, str] = {}
            if dotenv is not None and Path(dotenv).is_file():
                from dotenv import dotenv_values

                merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
            merged.update(os.environ)
            env = merged

        dataset = env.get("MOVIELENS_DATASET", "").strip() or "ml-latest-small"
        if dataset not in DATASETS:
            known = ", ".join(sorted(DATASETS))
            raise ConfigError(
                f"MOVIELENS_DATASET={dataset!r} is not a MovieLens dataset I know; use one of {known}"
            )

        mirror = env.get("MOVIELENS_MIRROR", "").strip() or None
        if mirror and not mirror.startswith(("http://", "https://", "file://")):
            raise ConfigError(f"MOVIELENS_MIRROR must be an http(s):// or file:// URL, got {mirror!r}")

        local = env.get("MOVIELENS_PATH", "").strip() or None
        local_path = Path(local).expanduser() if local else None
        if local_path is not None and not local_path.exists():
            raise ConfigError(f"MOVIELENS_PATH={local!r} does not exist (give a dataset folder or zip)")

        level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")

        token = env.get("DISCORD_TOKEN", "").strip()
        if token and (any(c.isspace() for c in token) or len(token) < 50):
            # Never echo the value: a mangled token is still mostly a secret.
            raise ConfigError(
                "DISCORD_TOKEN does not look like a bot token (too short or contains spaces); "
                "copy it again from the Developer Portal -> your app -> Bot -> Reset Token"
            )

        shard_ids, shard_count = _shards(env)
        tmdb_key = env.get("TMDB_API_KEY", "").strip()
        if any(c.isspace() for c in tmdb_key):  # never echo it: it is a secret
            raise ConfigError(
                "TMDB_API_KEY contains spaces; copy it again from themoviedb.org -> Settings -> API"
            )
        backup_dir = env.get("BACKUP_DIR", "").strip() or None

        return cls(
            discord_token=Secret(token),
            data_dir=Path(env.get("BOT_DATA_DIR", "").strip() or "data").expanduser(),
            movielens_dataset=dataset,
            movielens_mirror=mirror,
            movielens_path=local_path,
            dev_guild_id=_int(env, "DEV_GUILD_ID", None, minimum=1),
            admin_role_id=_int(env, "ADMIN_ROLE_ID", None, minimum=1),
            admin_channel_id=_int(env, "ADMIN_CHANNEL_ID", None, minimum=1),
            retrain_interval_hours=_float(env, "RETRAIN_INTERVAL_HOURS", 6.0),
            retrain_min_new_ratings=_int(env, "RETRAIN_MIN_NEW_RATINGS", 50, minimum=1) or 50,
            log_level=level,
            user_commands_per_minute=_int(env, "USER_COMMANDS_PER_MINUTE", 30, minimum=1) or 30,
            guild_commands_per_minute=_int(env, "GUILD_COMMANDS_PER_MINUTE", 120, minimum=1) or 120,
            database_url=_database_url(env),
            shard_ids=shard_ids,
            shard_count=shard_count,
            backup_keep_days=_int(env, "BACKUP_KEEP_DAYS", 7, minimum=1) or 7,
            backup_location=Path(backup_dir).expanduser() if backup_dir else None,
            tmdb_api_key=Secret(tmdb_key),
            tmdb_api_url=_http_url(env, "TMDB_API_URL", TMDB_API_URL),
            tmdb_image_url=_http_url(env, "TMDB_IMAGE_URL", TMDB_IMAGE_URL),
            movienight_minutes=_movienight_minutes(env),
        )
