"""Every sentence a member reads about an answer: serving paths, pick reasons, predictions.

The recommender returns codes (``ServingPath``, ``PickReason``, ``PopularityReason``) and the
numbers behind them; this module is the one place they become English.
"""

from __future__ import annotations

from collections.abc import Sequence

from recommender.core.types import Movie
from recommender.data.imports import MAX_BYTES, MAX_ROWS, RejectCode
from recommender.serving.contract import (
    ContentReason,
    ImportSummary,
    Pick,
    PickFilter,
    PickReason,
    PopularityReason,
    Prediction,
    RatingResult,
    Recommendations,
    ServingPath,
)

__all__ = [
    "IMPORT_REFUSALS",
    "NOT_YOUR_LIST",
    "PATH_LABELS",
    "ambiguous_title",
    "describe_filter",
    "explain_path",
    "explain_prediction",
    "explain_recommendations",
    "forget_done",
    "import_done",
    "import_refused",
    "pick_reason",
    "plural",
    "rate_text",
    "star_choice_name",
    "stars",
    "unknown_movie",
]

#: Which part of the recommender answered, for a footer.
PATH_LABELS: dict[ServingPath, str] = {
    ServingPath.TRAINED: "your taste profile from the last training",
    ServingPath.FOLD_IN: "all your ratings, including your newest ones",
    ServingPath.POPULARITY: "popular, well-rated movies",
    ServingPath.CONTENT: "genres and year (too few people have rated this movie for more)",
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
    if pick.because:
        rated = " and ".join(f"{m.title} {stars(given)}" for m, given in pick.because)
        return f"I think you'd give it {stars(pick.stars)}, because you rated {rated}"
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


NOT_YOUR_LIST = "This list is someone else's: use /recommend to get your own."

_MIB = MAX_BYTES / (1024 * 1024)
_FORMATS = "a Letterboxd ratings.csv or diary.csv, IMDb's ratings export, or a movieId,rating CSV"

#: Why a whole file was refused; nothing was imported from it.
IMPORT_REFUSALS: dict[RejectCode, str] = {
    RejectCode.EMPTY: "That file is empty.",
    RejectCode.TOO_LARGE: f"That file is too big: I read files of up to {_MIB:g} MB.",
    RejectCode.TOO_MANY_ROWS: f"That file has more than {MAX_ROWS:,} rows, more than I import at once.",
    RejectCode.BINARY: "That isn't a text file: please send the CSV itself, not a zip or a spreadsheet.",
    RejectCode.NOT_UTF8: "I can only read UTF-8 text: please send the CSV exactly as the site exported it.",
    RejectCode.HTML: "That's a web page saved as a file, not the CSV export itself.",
    RejectCode.MALFORMED: "That file isn't a readable CSV (a quote is never closed, or similar).",
    RejectCode.UNKNOWN_COLUMNS: f"I don't recognise that file's columns: send {_FORMATS}.",
    RejectCode.NO_ROWS: "That file has its header row but no ratings under it.",
}


def import_refused(code: RejectCode) -> str:
    return f"{IMPORT_REFUSALS[code]} Nothing was imported."


def import_done(summary: ImportSummary, whole_stars: bool) -> str:
    """``Imported 412 of 450 ratings; 38 couldn't be matched to a movie I know (the attached file).``"""
    offered = summary.matched + summary.unmatched
    if not offered:
        return "That file only lists films logged without a rating, so there was nothing to import."
    if not summary.matched:
        return (
            f"None of the {plural(offered, 'rating')} in that file matched a movie I know, so nothing "
            "changed: the attached file lists them, with the reason for each."
        )
    lines = [f"Imported {summary.matched:,} of {offered:,} ratings"]
    if summary.unmatched:
        lines[0] += (
            f"; {summary.unmatched:,} {'is' if summary.unmatched == 1 else 'are'} not in my catalogue "
            "or had no usable rating: they're in the attached file, with the reason for each."
        )
    else:
        lines[0] += "."
    if summary.unchanged:
        lines.append(f"{plural(summary.unchanged, 'rating')} you already had stayed as they were.")
    if summary.duplicates:
        lines.append(f"{plural(summary.duplicates, 'repeat')} of the same film: the latest one counts.")
    if summary.skipped_unrated:
        lines.append(f"{plural(summary.skipped_unrated, 'film')} logged without a rating were skipped.")
    if summary.rounded and whole_stars:
        lines.append("This server uses whole stars, so half stars were rounded up (3.5★ became 4★).")
    lines.append(f"You now have {plural(summary.n_ratings, 'rating')}; /recommend uses them right away.")
    return "\n".join(lines)


def unknown_movie(query: str, suggestions: Sequence[Movie]) -> str:
    shown = query if len(query) <= 80 else query[:77] + "..."
    text = f"I couldn't find a movie called “{shown}”."
    if suggestions:
        text += " Did you mean: " + "; ".join(m.display for m in suggestions[:5]) + "? Pick one below."
    return text


def ambiguous_title(query: str, remakes: Sequence[Movie]) -> str:
    shown = query if len(query) <= 80 else query[:77] + "..."
    years = ", ".join(str(m.year) for m in remakes if m.year)
    return f"There are several movies called “{shown}” ({years}): pick the one you mean below."


def describe_filter(filters: PickFilter | None) -> str:
    """``Crime, 1990-1999`` for a list's title; empty without a filter."""
    if filters is None or not filters.active:
        return ""
    parts = [filters.genre] if filters.genre else []
    low, high = filters.year_from, filters.year_to
    if low is not None and high is not None:
        parts.append(str(low) if low == high else f"{low}–{high}")
    elif low is not None:
        parts.append(f"from {low}")
    elif high is not None:
        parts.append(f"up to {high}")
    return ", ".join(p for p in parts if p)


def hidden_text(movie: Movie, new: bool) -> str:
    title = f"**{movie.display}**"
    if not new:
        return f"{title} is already hidden: I won't suggest it. /hidden brings movies back."
    return f"Hidden {title}: I won't suggest it again. /hidden brings it back."


def watchlist_text(movie: Movie, new: bool) -> str:
    title = f"**{movie.display}**"
    if not new:
        return f"{title} is already on your watchlist (/watchlist)."
    return f"Added {title} to your watchlist (/watchlist shows it)."


def unrate_text(movie: Movie, removed: Movie | None) -> str:
    if removed is None:
        return f"You haven't rated **{movie.display}**, so there was nothing to remove."
    return f"Removed your rating of **{removed.display}**."


LIST_TITLES = {"hidden": "Movies you hid", "watchlist": "Your watchlist"}
LIST_EMPTY = {
    "hidden": "You haven't hidden any movies. Press *Not interested* under a pick to hide it.",
    "watchlist": "Your watchlist is empty. Press *Watchlist* under a pick to add it.",
}
LIST_PLACEHOLDERS = {"hidden": "Recommend again…", "watchlist": "Remove from the watchlist…"}


def list_removed(kind: str, n: int) -> str:
    if kind == "hidden":
        return f"{plural(n, 'movie')} can be recommended again."
    return f"Removed {plural(n, 'movie')} from your watchlist."


def export_text(n: int) -> str:
    if not n:
        return "You have no ratings to export yet: try `/rate` or `/import`."
    return f"Here are your {plural(n, 'rating')} (a CSV that `/import` reads back)."


# -- retrains (admins read these) -------------------------------------------------------------------
def _ago(timestamp: float) -> str:
    return f"<t:{int(timestamp)}:R>"


def retrain_trigger(trigger: str) -> str:
    """``admin:<id>`` -> "started by @admin"; ``schedule`` -> "scheduled"."""
    if trigger.startswith("admin:") and trigger[6:].isdigit():
        return f"started by <@{trigger[6:]}>"
    return "scheduled"


def retrain_joined(trigger: str, since: float) -> str:
    """Said only when this process runs the retrain and has put the asker on its list."""
    return (
        f"A retrain ({retrain_trigger(trigger)} {_ago(since)}) is already running; "
        "I'll post its results here when it finishes."
    )


def retrain_elsewhere(pid: int, host: str, since: float, trigger: str, admin_channel_id: int | None) -> str:
    """Another process trains: say which, and where its result will appear (no promise to post it here)."""
    where = f"in <#{admin_channel_id}> and in /stats" if admin_channel_id else "in /stats"
    return (
        f"A retrain ({retrain_trigger(trigger)} {_ago(since)}) is already running in another process "
        f"(pid {pid} on `{host}`), so I won't start a second one. Its result will show {where} when it ends."
    )


def retrain_finished_for(user_id: int) -> str:
    """The channel message when the interaction's token has expired (runs over ~14 minutes)."""
    return f"<@{user_id}> the retrain you asked for has finished:"


def retrain_finished_scheduled(new_ratings: int | None) -> str:
    why = f" ({plural(new_ratings, 'new rating')})" if new_ratings else ""
    return f"A scheduled retrain{why} has finished:"


RETRAIN_RECOVERED = "A retrain that was running when the bot stopped has been accounted for:"


def retrain_status(trigger: str, since: float, *, ours: bool, pid: int, host: str) -> str:
    where = "in this process" if ours else f"in another process (pid {pid} on `{host}`)"
    return f"running {where}, {retrain_trigger(trigger)} {_ago(since)}"
