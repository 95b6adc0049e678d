"""Member-facing words for how an answer was made: every result names its serving path.

Kept apart from the service so the bot's texts can be read (and reworded) in one place.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ServingPath", "explain_path", "explain_popular_prediction", "pick_reason", "plural"]


class ServingPath(StrEnum):
    """Which part of the recommender answered a request."""

    TRAINED = "trained"  # the member's learned embedding from the last training
    FOLD_IN = "fold_in"  # an embedding solved just now from the member's current ratings
    POPULARITY = "popularity"  # Bayesian-average popular picks: no ratings or no model
    CONTENT = "content"  # a movie without an embedding, predicted from its genres and year


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def stars_text(stars: float) -> str:
    return f"{stars:.1f}★"


# Why the popularity path was taken; the key is chosen by the service.
POPULARITY_REASONS: dict[str, str] = {
    "no_ratings": "popular picks: rate a few movies to personalise",
    "no_model": "popular picks: my taste model isn't available right now, so these are crowd favourites",
    "unknown_movies": (
        "popular picks: the movies you rated are new to my model; I'll learn them at the next retrain"
    ),
}


# The same reasons, worded for a single-movie prediction.
PREDICTION_POPULARITY_REASONS: dict[str, str] = {
    "no_ratings": "that's the crowd's view: rate a few movies to personalise",
    "no_model": "that's the crowd's view: my taste model isn't available right now",
    "unknown_movies": (
        "that's the crowd's view: the movies you rated are new to my model; "
        "I'll learn them at the next retrain"
    ),
}


def explain_popular_prediction(reason: str, *, count: int, stars: float) -> str:
    """Why a prediction is the movie's average: ``87 ratings average 4.2★; that's the crowd's view: ...``."""
    head = (
        f"{plural(count, 'rating')} average {stars_text(stars)}"
        if count
        else "nobody has rated it yet, so that's the overall average"
    )
    return f"{head}; {PREDICTION_POPULARITY_REASONS[reason]}"


def explain_path(path: ServingPath, *, n_ratings: int = 0, popularity_reason: str = "no_ratings") -> str:
    """One short sentence a member understands, e.g. ``based on your 12 ratings``."""
    if path is ServingPath.TRAINED:
        return f"based on your {plural(n_ratings, 'rating')}"
    if path is ServingPath.FOLD_IN:
        return f"based on your {plural(n_ratings, 'rating')} (learned just now)"
    if path is ServingPath.CONTENT:
        base = f"based on your {plural(n_ratings, 'rating')}" if n_ratings else "based on your taste"
        return f"{base}, matched by genres and year (too few ratings of this movie for my model)"
    return POPULARITY_REASONS[popularity_reason]


def pick_reason(path: ServingPath, stars: float, *, count: int | None = None) -> str:
    """Why one movie is in a list of picks."""
    if path is ServingPath.POPULARITY:
        if count:
            return f"{stars_text(stars)} on average from {plural(count, 'rating')}"
        return f"{stars_text(stars)} on average"
    return f"I think you'd give it {stars_text(stars)}"
