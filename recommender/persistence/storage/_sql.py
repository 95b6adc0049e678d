"""SQL shared by the storage modules (``?`` placeholders; both dialects accept every statement)."""

from __future__ import annotations

import json
import math
from typing import Any

from recommender.core.types import Movie
from recommender.persistence.storage._backend import Row

_UPSERT_RATING = """
INSERT INTO ratings (user_id, movie_id, stars, guild_id, rated_at, previous_stars)
VALUES (?, ?, ?, ?, ?, NULL)
ON CONFLICT (user_id, movie_id) DO UPDATE SET
    previous_stars = ratings.stars,
    stars = excluded.stars,
    guild_id = excluded.guild_id,
    rated_at = excluded.rated_at
"""
UPSERT_RATING = _UPSERT_RATING + "RETURNING previous_stars"
UPSERT_RATINGS = _UPSERT_RATING  # executemany takes no RETURNING
# ids from links.csv are kept when a later load does not carry them
UPSERT_MOVIE = """
INSERT INTO movies (id, title, year, genres, dataset, imdb_id, tmdb_id) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    title = excluded.title, year = excluded.year, genres = excluded.genres, dataset = excluded.dataset,
    imdb_id = COALESCE(excluded.imdb_id, movies.imdb_id), tmdb_id = COALESCE(excluded.tmdb_id, movies.tmdb_id)
"""
# a movie an admin added is no dataset movie: reloading the dataset keeps it
DELETE_UNUSED_MOVIE = (
    "DELETE FROM movies WHERE id = ? AND NOT EXISTS (SELECT 1 FROM ratings WHERE movie_id = ?) "
    "AND NOT EXISTS (SELECT 1 FROM added_movies WHERE movie_id = movies.id)"
)
MOVIE_COLUMNS = "SELECT id, title, year, genres, imdb_id, tmdb_id FROM movies"
RATING_COLUMNS = "SELECT user_id, movie_id, stars, guild_id, rated_at FROM ratings"
SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
READ_MEMBER_RATINGS = (
    "SELECT user_id, movie_id, stars, rated_at FROM ratings ORDER BY rated_at, user_id, movie_id"
)


def optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def movie_from_row(row: Row) -> Movie:
    movie_id, title, year, genres, imdb_id, tmdb_id = row
    return Movie(
        int(movie_id),
        title,
        optional_int(year),
        tuple(g for g in genres.split("|") if g),
        optional_int(imdb_id),
        optional_int(tmdb_id),
    )


def jsonable(value: Any) -> Any:
    # numpy scalars and arrays show up in metrics dicts from training
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def dumps(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, default=jsonable)


def check_stars(stars: float) -> float:
    """Stars as stored: a finite number in 0.5..5 (the dataset's own steps are the service's check)."""
    stars = float(stars)
    if not math.isfinite(stars):
        raise ValueError(f"stars must be a finite number, got {stars!r}")
    if not 0.5 <= stars <= 5.0:
        raise ValueError(f"stars {stars!r} are outside 0.5..5")
    return stars
