"""Checking an admin's movie details before they reach the catalogue, and the genres allowed.

Pure functions: text in, clean values out, or :class:`InvalidMovieDetails` saying what is wrong
(the bot shows that message as it is). The service and the bot tests' fake both use them, so a
rule holds the same everywhere.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from recommender.core.errors import DuplicateMovie, InvalidMovieDetails
from recommender.core.types import Movie
from recommender.data.remap import title_keys

__all__ = [
    "MAX_TITLE",
    "MIN_YEAR",
    "NO_GENRES",
    "check_title",
    "check_year",
    "dataset_genres",
    "find_duplicate",
    "max_year",
    "parse_genres",
    "parse_imdb",
]

MIN_YEAR = 1870  # the oldest surviving motion pictures are from the late 1870s-1880s
MAX_TITLE = 200
#: MovieLens's placeholder for a movie without genres; not one an admin may choose
NO_GENRES = "(no genres listed)"
_IMDB = re.compile(r"^(?:tt)?(\d{1,10})$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def max_year(now: float | None = None) -> int:
    """Next year: a movie announced for next year may be added already."""
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).year + 1


def dataset_genres(movies: Iterable[Movie]) -> list[str]:
    """The genres the catalogue's movies use, sorted (the placeholder left out)."""
    return sorted({g for m in movies for g in m.genres if g and g != NO_GENRES})


def check_title(title: str) -> str:
    text = " ".join(_CONTROL.sub(" ", title or "").split())
    if not text:
        raise InvalidMovieDetails("The title is empty; nothing was changed.")
    if len(text) > MAX_TITLE:
        raise InvalidMovieDetails(f"The title is longer than {MAX_TITLE} characters; nothing was changed.")
    return text


def check_year(year: int, now: float | None = None) -> int:
    top = max_year(now)
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= top:
        raise InvalidMovieDetails(
            f"The year must be between {MIN_YEAR} and {top}; {year!r} isn't. Nothing was changed."
        )
    return year


def parse_genres(text: str, known: Collection[str]) -> tuple[str, ...]:
    """``"sci-fi, Drama"`` -> ``("Sci-Fi", "Drama")``: each one of ``known`` (any case), no repeats."""
    by_fold = {g.casefold(): g for g in known}
    chosen: list[str] = []
    unknown: list[str] = []
    for part in (text or "").replace("|", ",").split(","):
        name = part.strip()
        if not name:
            continue
        genre = by_fold.get(name.casefold())
        if genre is None:
            unknown.append(name[:40])
        elif genre not in chosen:
            chosen.append(genre)
    if unknown:
        raise InvalidMovieDetails(
            f"Unknown genre “{unknown[0]}”. Genres are comma-separated, from: {', '.join(sorted(known))}. "
            "Nothing was changed."
        )
    if not chosen:
        raise InvalidMovieDetails(
            f"Give at least one genre (comma-separated), from: {', '.join(sorted(known))}. "
            "Nothing was changed."
        )
    return tuple(chosen)


def parse_imdb(text: str | None) -> int | None:
    """``"tt0133093"`` or ``"133093"`` -> 133093; empty -> None."""
    raw = (text or "").strip()
    if not raw:
        return None
    match = _IMDB.match(raw)
    if match is None or int(match[1]) == 0:
        shown = raw[:40]
        raise InvalidMovieDetails(
            f"“{shown}” is not an IMDb id: use the tt number from the movie's IMDb address "
            "(like tt0133093) or just its digits. Nothing was changed."
        )
    return int(match[1])


def find_duplicate(
    movies: Iterable[Movie], title: str, year: int | None, imdb_id: int | None, *, ignore: int | None = None
) -> Movie | None:
    """A catalogue movie that already is this one: the same IMDb id, or the same title and year."""
    key = title_keys(title)[0] if title_keys(title) else ""
    for movie in movies:
        if movie.movie_id == ignore:
            continue
        if imdb_id is not None and movie.imdb_id == imdb_id:
            return movie
        if movie.year == year and key and title_keys(movie.title)[:1] == [key]:
            return movie
    return None


def check_new(movies: Iterable[Movie], movie: Movie, *, ignore: int | None = None) -> None:
    """Raise :class:`DuplicateMovie` when ``movie`` is already in ``movies``."""
    same = find_duplicate(movies, movie.title, movie.year, movie.imdb_id, ignore=ignore)
    if same is not None:
        raise DuplicateMovie(same)
