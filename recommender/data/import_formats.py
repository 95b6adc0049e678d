"""The history files members bring, told apart by their header row, and their cells read as values.

Columns are found by NAME (case and surrounding blanks ignored), never by position: IMDb has added
columns to its export over the years (``Original Title``, ``Release Date``...) and may again.
Used by :mod:`recommender.data.imports`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

__all__ = ["ImportFormat", "Layout", "detect", "parse_date", "parse_number", "parse_year"]


class ImportFormat(StrEnum):
    LETTERBOXD_RATINGS = "letterboxd-ratings"
    LETTERBOXD_DIARY = "letterboxd-diary"
    IMDB = "imdb"
    MOVIELENS = "movielens"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each field of one format sits in this file's header (None: column absent)."""

    format: ImportFormat
    rating: int
    title: int | None = None
    year: int | None = None
    imdb: int | None = None
    movie_id: int | None = None
    #: date columns in order of preference (Letterboxd diary: "Watched Date", then "Date")
    dates: tuple[int, ...] = ()
    timestamp: int | None = None


def _key(name: str) -> str:
    return " ".join(name.strip().lstrip("\ufeff").casefold().split())


def detect(header: list[str]) -> Layout | None:
    """The layout of a header row, or None when it is none of the formats we read."""
    cols: dict[str, int] = {}
    for i, name in enumerate(header):
        cols.setdefault(_key(name), i)

    def at(*names: str) -> tuple[int, ...]:
        return tuple(cols[n] for n in names if n in cols)

    if {"name", "year", "letterboxd uri", "rating"} <= cols.keys():
        diary = bool({"watched date", "rewatch"} & cols.keys())
        return Layout(
            ImportFormat.LETTERBOXD_DIARY if diary else ImportFormat.LETTERBOXD_RATINGS,
            rating=cols["rating"],
            title=cols["name"],
            year=cols["year"],
            dates=at("watched date", "date"),
        )
    if {"const", "your rating"} <= cols.keys():
        return Layout(
            ImportFormat.IMDB,
            rating=cols["your rating"],
            title=cols.get("title"),
            year=cols.get("year"),
            imdb=cols["const"],
            dates=at("date rated"),
        )
    if {"movieid", "rating"} <= cols.keys():
        return Layout(
            ImportFormat.MOVIELENS,
            rating=cols["rating"],
            movie_id=cols["movieid"],
            timestamp=cols.get("timestamp"),
        )
    return None


def parse_number(text: str) -> float | None:
    """A finite number, or None (blank, words, ``nan``, ``inf``)."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_year(text: str) -> int | None:
    text = text.strip()
    return int(text) if len(text) == 4 and text.isdigit() else None


@functools.lru_cache(maxsize=4096)
def parse_date(text: str) -> float | None:
    """``YYYY-MM-DD`` (Letterboxd, IMDb) as unix seconds at midnight UTC; None if not a date.

    Cached: an export repeats its dates, and parsing them was a third of the matching time.
    """
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
