"""The numbered schema migrations, one list for SQLite and PostgreSQL.

``MIGRATIONS[i]`` brings the schema from version i to i + 1. Each runs in its own transaction
together with the version bump, so a crash mid-migration leaves the previous version intact. Never
edit a released migration; append a new one.

The statements are written in SQLite's dialect restricted to what PostgreSQL also accepts; the only
differences are column types, translated by :func:`for_dialect` (the one place they live): SQLite's
64-bit ``INTEGER`` and 8-byte ``REAL`` are ``BIGINT`` and ``DOUBLE PRECISION`` in PostgreSQL (Discord
ids need all 64 bits, unix times more than a 4-byte float), and ``WITHOUT ROWID`` is SQLite-only.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Dialect", "for_dialect"]

Dialect = Literal["sqlite", "postgresql"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: catalog, member ratings, model versions
    (
        """CREATE TABLE movies (
            id      INTEGER PRIMARY KEY,
            title   TEXT NOT NULL,
            year    INTEGER,
            genres  TEXT NOT NULL DEFAULT '',
            dataset TEXT NOT NULL
        )""",
        """CREATE TABLE ratings (
            user_id        INTEGER NOT NULL,
            movie_id       INTEGER NOT NULL REFERENCES movies(id),
            stars          REAL NOT NULL CHECK (stars >= 0.5 AND stars <= 5.0),
            guild_id       INTEGER,
            rated_at       REAL NOT NULL,
            previous_stars REAL,
            PRIMARY KEY (user_id, movie_id)
        ) WITHOUT ROWID""",
        # the retrain loop counts ratings newer than the last training
        "CREATE INDEX ratings_rated_at ON ratings(rated_at)",
        "CREATE INDEX ratings_movie ON ratings(movie_id)",
        """CREATE TABLE model_versions (
            version    TEXT PRIMARY KEY,
            family     TEXT NOT NULL,
            metrics    TEXT NOT NULL,
            trained_at REAL NOT NULL,
            published  INTEGER NOT NULL,
            recorded_at REAL NOT NULL
        )""",
    ),
    # 2: dataset popularity next to the catalog (cold start works before any model exists)
    (
        """CREATE TABLE movie_popularity (
            movie_id  INTEGER PRIMARY KEY REFERENCES movies(id) ON DELETE CASCADE,
            n_ratings INTEGER NOT NULL,
            mean      REAL NOT NULL,
            score     REAL NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 3: IMDb/TMDB ids, hidden movies and watchlists, retrain outcomes, cross-process locks
    (
        "ALTER TABLE movies ADD COLUMN imdb_id INTEGER",
        "ALTER TABLE movies ADD COLUMN tmdb_id INTEGER",
        # a hidden or listed movie that leaves the catalog goes with it (its id may mean another film)
        """CREATE TABLE hidden (
            user_id   INTEGER NOT NULL,
            movie_id  INTEGER NOT NULL REFERENCES movies(id) ON DELETE CASCADE,
            hidden_at REAL NOT NULL,
            PRIMARY KEY (user_id, movie_id)
        )""",
        """CREATE TABLE watchlist (
            user_id  INTEGER NOT NULL,
            movie_id INTEGER NOT NULL REFERENCES movies(id) ON DELETE CASCADE,
            added_at REAL NOT NULL,
            PRIMARY KEY (user_id, movie_id)
        )""",
        # no surrogate key: SQLite and PostgreSQL generate ids differently, and the time orders runs
        """CREATE TABLE retrain_runs (
            started_at  REAL NOT NULL,
            finished_at REAL NOT NULL,
            trigger     TEXT NOT NULL,
            published   INTEGER NOT NULL,
            version     TEXT,
            reason      TEXT NOT NULL DEFAULT '',
            metrics     TEXT NOT NULL
        )""",
        "CREATE INDEX retrain_runs_finished ON retrain_runs(finished_at)",
        """CREATE TABLE locks (
            name        TEXT PRIMARY KEY,
            owner_pid   INTEGER NOT NULL,
            owner_host  TEXT NOT NULL,
            acquired_at REAL NOT NULL
        )""",
    ),
    # 4: movies added by admins (newer than the dataset), and member data kept aside when its movie
    # left the catalogue (a dataset switch that found no match, or an added movie removed)
    (
        """CREATE TABLE added_movies (
            movie_id  INTEGER PRIMARY KEY REFERENCES movies(id) ON DELETE CASCADE,
            added_by  INTEGER NOT NULL,
            added_at  REAL NOT NULL,
            edited_by INTEGER,
            edited_at REAL
        )""",
        # no foreign key: the movie is gone from the catalogue, which is why the row is here
        """CREATE TABLE set_aside_ratings (
            user_id      INTEGER NOT NULL,
            kind         TEXT NOT NULL,
            dataset      TEXT NOT NULL,
            movie_id     INTEGER NOT NULL,
            title        TEXT NOT NULL,
            year         INTEGER,
            stars        REAL,
            rated_at     REAL NOT NULL,
            guild_id     INTEGER,
            reason       TEXT NOT NULL,
            set_aside_at REAL NOT NULL
        )""",
        "CREATE INDEX set_aside_user ON set_aside_ratings(user_id)",
    ),
    # 5: movie nights (/movienight): the card's state outlives a restart, one open night per channel
    (
        # id: the /movienight interaction's id, a snowflake, so both databases agree on it
        """CREATE TABLE movie_nights (
            id           INTEGER PRIMARY KEY,
            channel_id   INTEGER NOT NULL,
            guild_id     INTEGER,
            host_id      INTEGER NOT NULL,
            message_id   INTEGER,
            opened_at    REAL NOT NULL,
            closes_at    REAL NOT NULL,
            genre        TEXT,
            year_from    INTEGER,
            year_to      INTEGER,
            state        TEXT NOT NULL CHECK (state IN ('open', 'picked', 'closed')),
            ended        TEXT,
            round_no     INTEGER NOT NULL DEFAULT 0,
            polled_round INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE UNIQUE INDEX movie_nights_one_open ON movie_nights(channel_id) WHERE state = 'open'",
        "CREATE INDEX movie_nights_closing ON movie_nights(closes_at) WHERE state = 'open'",
        """CREATE TABLE movie_night_members (
            night_id  INTEGER NOT NULL REFERENCES movie_nights(id) ON DELETE CASCADE,
            user_id   INTEGER NOT NULL,
            seq       INTEGER NOT NULL,
            joined_at REAL NOT NULL,
            PRIMARY KEY (night_id, user_id)
        )""",
        # every round of picks shown (a re-roll skips them all); no foreign key on the movie: a
        # movie removed from the catalogue later must not take the night's history with it
        """CREATE TABLE movie_night_picks (
            night_id INTEGER NOT NULL REFERENCES movie_nights(id) ON DELETE CASCADE,
            round_no INTEGER NOT NULL,
            rank_no  INTEGER NOT NULL,
            movie_id INTEGER NOT NULL,
            PRIMARY KEY (night_id, round_no, rank_no)
        )""",
    ),
    # 6: what a lock is held for (a retrain's trigger), so a restarted bot can record a run it lost
    ("ALTER TABLE locks ADD COLUMN note TEXT NOT NULL DEFAULT ''",),
)
SCHEMA_VERSION = len(MIGRATIONS)

_POSTGRES_TYPES = ((re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))


def for_dialect(statement: str, dialect: Dialect) -> str:
    """One migration statement as ``dialect`` needs it."""
    if dialect == "sqlite":
        return statement
    for pattern, replacement in _POSTGRES_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement.replace(" WITHOUT ROWID", "")
