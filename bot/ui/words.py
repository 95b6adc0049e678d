"""Every sentence a member reads about an answer: serving paths, pick reasons, predictions.

The recommender returns codes (``ServingPath``, ``PickReason``, ``PopularityReason``) and the
numbers behind them; this module is the one place they become English.
"""

from __future__ import annotations

from recommender.core.types import Movie
from recommender.serving.contract import (
    ContentReason,
    Pick,
    PickReason,
    PopularityReason,
    Prediction,
    RatingResult,
    Recommendations,
    ServingPath,
)

__all__ = [
    "PATH_LABELS",
    "explain_path",
    "explain_prediction",
    "explain_recommendations",
    "forget_done",
    "pick_reason",
    "plural",
    "rate_text",
    "star_choice_name",
    "stars",
]

#: Which part of the recommender answered, for a footer.
PATH_LABELS: dict[ServingPath, str] = {
    ServingPath.TRAINED: "your taste profile from the last training",
    ServingPath.FOLD_IN: "your ratings, folded into the model just now",
    ServingPath.POPULARITY: "popular, well-rated movies",
    ServingPath.CONTENT: "genres and year (the model doesn't know this movie yet)",
}

# Why the popularity path was taken, for a list of picks.
POPULARITY_REASONS: dict[PopularityReason, str] = {
    PopularityReason.NO_RATINGS: "popular picks: rate a few movies to personalise",
    PopularityReason.NO_MODEL: (
        "popular picks: my taste model isn't available right now, so these are crowd favourites"
    ),
    PopularityReason.UNKNOWN_MOVIES: (
        "popular picks: the movies you rated are new to my model; I'll learn them at the next retrain"
    ),
}

# The same reasons, worded for a single-movie prediction.
PREDICTION_POPULARITY_REASONS: dict[PopularityReason, str] = {
    PopularityReason.NO_RATINGS: "that's the crowd's view: rate a few movies to personalise",
    PopularityReason.NO_MODEL: "that's the crowd's view: my taste model isn't available right now",
    PopularityReason.UNKNOWN_MOVIES: (
        "that's the crowd's view: the movies you rated are new to my model; "
        "I'll learn them at the next retrain"
    ),
}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def stars(value: float) -> str:
    return f"{value:.1f}★"


def explain_path(
    path: ServingPath, n_ratings: int = 0, popularity_reason: PopularityReason | None = None
) -> str:
    """One short sentence a member understands, e.g. ``based on your 12 ratings``."""
    if path is ServingPath.TRAINED:
        return f"based on your {plural(n_ratings, 'rating')}"
    if path is ServingPath.FOLD_IN:
        return f"based on your {plural(n_ratings, 'rating')} (learned just now)"
    if path is ServingPath.CONTENT:
        base = f"based on your {plural(n_ratings, 'rating')}" if n_ratings else "based on your taste"
        return f"{base}, matched by genres and year (too few ratings of this movie for my model)"
    return POPULARITY_REASONS[popularity_reason or PopularityReason.NO_RATINGS]


def explain_recommendations(recs: Recommendations) -> str:
    return explain_path(recs.path, recs.n_ratings, recs.popularity_reason)


def explain_prediction(prediction: Prediction) -> str:
    """``87 ratings average 4.2★; that's the crowd's view: ...`` or ``based on your 3 ratings``."""
    if prediction.path is ServingPath.POPULARITY:
        head = (
            f"{plural(prediction.movie_ratings, 'rating')} average {stars(prediction.stars)}"
            if prediction.movie_ratings
            else "nobody has rated it yet, so that's the overall average"
        )
        reason = prediction.popularity_reason or PopularityReason.NO_RATINGS
        text = f"{head}; {PREDICTION_POPULARITY_REASONS[reason]}"
    elif prediction.content_reason is ContentReason.ADDED_MOVIE:
        text = ADDED_MOVIE_PREDICTION.format(ratings=plural(prediction.n_ratings, "rating"))
    else:
        text = explain_path(prediction.path, prediction.n_ratings)
    if prediction.rated is not None:
        text += f"; you rated it {prediction.rated:g}★"
    return text


#: /predict for a movie an admin added since the last training
ADDED_MOVIE_PREDICTION = (
    "based on your {ratings}, matched by genres and year: this movie is newer than my model, "
    "which learns it at the next retrain"
)


def pick_reason(pick: Pick) -> str:
    """Why one movie is in a list of picks."""
    if pick.reason is PickReason.NEW_MOVIE:
        return f"🆕 new here: I think you'd give it {stars(pick.stars)}, judging by its genres and year"
    if pick.reason is PickReason.POPULAR:
        if pick.ratings:
            return f"{stars(pick.stars)} on average from {plural(pick.ratings, 'rating')}"
        return f"{stars(pick.stars)} on average"
    if pick.reason is PickReason.SIMILAR:
        return f"liked by the same people (similarity {pick.similarity:.2f})"
    if pick.reason is PickReason.SHARED_GENRES:
        return f"popular and shares {plural(pick.shared_genres, 'genre')} with it"
    return f"I think you'd give it {stars(pick.stars)}"


def rate_text(result: RatingResult, title: str) -> str:
    """``Saved: **Heat (1995)** — 4.5★ (updated from 3.0★). You have rated 12 movies.``"""
    text = f"Saved: **{title}** — {stars(result.stars)}"
    if result.previous is not None and result.previous != result.stars:
        text += f" (updated from {stars(result.previous)})"
    elif result.previous is not None:
        text += " (unchanged)"
    return text + f". You have rated {plural(result.n_ratings, 'movie')}."


def forget_done(deleted: int) -> str:
    return f"Done: I deleted {plural(deleted, 'rating')}. Fresh start!"


def star_choice_name(value: float) -> str:
    """How one allowed value of ``/rate``'s stars is offered: ``4.5★``."""
    return f"{value:g}★"


# -- movies added by admins (/addmovie, /editmovie, /removemovie) -----------------------------------
def _movie_line(movie: Movie) -> str:
    imdb = f", IMDb tt{movie.imdb_id:07d}" if movie.imdb_id else ""
    return f"**{movie.display}** ({', '.join(movie.genres)}{imdb}; movie #{movie.movie_id})"


def movie_added(movie: Movie) -> str:
    return (
        f"Added {_movie_line(movie)}. Members can find and rate it now; until the next retrain I "
        "predict it from its genres and year."
    )


def movie_edited(movie: Movie) -> str:
    return f"Updated: {_movie_line(movie)}."


def remove_prompt(movie: Movie) -> str:
    return (
        f"Remove {_movie_line(movie)} from the catalogue? Members' ratings of it are kept aside, not deleted."
    )


def movie_removed(movie: Movie, kept: int) -> str:
    return f"Removed **{movie.display}**; {plural(kept, 'rating')} of it kept aside (not deleted)."
