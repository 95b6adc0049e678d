"""The genre and decade options of ``/recommend`` and ``/movienight``, and the filter they make."""

from __future__ import annotations

from discord import app_commands

from bot.ui.transformers import MAX_CHOICES
from recommender.core.errors import RecommenderError
from recommender.serving.contract import PickFilter

__all__ = [
    "DECADES",
    "FIRST_YEAR",
    "LAST_YEAR",
    "decade_choices",
    "filter_choices",
    "genre_choices",
    "pick_filter",
]

DECADES = tuple(range(1900, 2030, 10))
FIRST_YEAR, LAST_YEAR = 1870, 2100

Choices = list[app_commands.Choice[str]] | list[app_commands.Choice[int]]


def genre_choices(genres: list[str]) -> list[app_commands.Choice[str]]:
    """The catalogue's genres as choices (Discord takes at most 25)."""
    return [app_commands.Choice(name=g, value=g) for g in genres[:MAX_CHOICES]]


def decade_choices() -> list[app_commands.Choice[int]]:
    return [app_commands.Choice(name=f"{d}s", value=d) for d in DECADES]


def filter_choices(genres: list[str]) -> dict[str, Choices]:
    """``genre`` and ``decade`` choices for ``app_commands.choices``."""
    offered: dict[str, Choices] = {"decade": decade_choices()}
    if genres:  # an empty catalogue has none, and Discord refuses an empty list of choices
        offered["genre"] = genre_choices(genres)
    return offered


def pick_filter(
    genre: str | None, decade: int | None, since: int | None = None, until: int | None = None
) -> PickFilter:
    """The options as one filter; a decade and a year range narrow each other."""
    lows = [v for v in (decade, since) if v is not None]
    highs = [v for v in (None if decade is None else decade + 9, until) if v is not None]
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None and low > high:
        raise RecommenderError(f"No year is both from {low} and up to {high}: please widen the years.")
    return PickFilter(genre or None, low, high)
