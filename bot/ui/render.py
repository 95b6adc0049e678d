"""Embeds and messages: how results look in Discord. No logic beyond formatting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import discord

from bot.ui import words
from bot.ui.words import stars
from recommender.core.types import Movie
from recommender.persistence.storage import StoredRating
from recommender.serving.contract import (
    Pick,
    PickFilter,
    Prediction,
    RatingResult,
    Recommendations,
    ServingPath,
)

__all__ = [
    "IMDB_URL",
    "TMDB_URL",
    "forget_prompt",
    "movie_links",
    "movie_list_embed",
    "predict_embed",
    "rate_message",
    "ratings_embed",
    "recommend_embed",
    "similar_embed",
    "stars",
]

COLOUR = discord.Colour.blurple()

RATINGS_PER_PAGE = 10

IMDB_URL = "https://www.imdb.com/title/tt{:07d}/"
TMDB_URL = "https://www.themoviedb.org/movie/{}"


def _path(path: ServingPath) -> str:
    return words.PATH_LABELS[path]


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return discord.utils.format_dt(datetime.fromtimestamp(timestamp, tz=UTC), "R")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def movie_links(movie: Movie) -> str:
    """``[IMDb](…) · [TMDB](…)`` from links.csv; empty for a movie without either id."""
    links = []
    if movie.imdb_id:
        links.append(f"[IMDb]({IMDB_URL.format(int(movie.imdb_id))})")
    if movie.tmdb_id:
        links.append(f"[TMDB]({TMDB_URL.format(int(movie.tmdb_id))})")
    return " · ".join(links)


def _with_links(text: str, movie: Movie) -> str:
    links = movie_links(movie)
    return f"{text}\n{links}" if links else text


def _pick_value(pick: Pick) -> str:
    # Cut the reason, never the links: they are what a member clicks.
    links = movie_links(pick.movie)
    reason = _clip(words.pick_reason(pick), 1024 - len(links) - 1)
    return f"{reason}\n{links}" if links else reason


def rate_message(result: RatingResult) -> str:
    return words.rate_text(result, discord.utils.escape_markdown(result.movie.display))


def recommend_embed(
    recs: Recommendations, filters: PickFilter | None = None, skip: int = 0, *, poster: str | None = None
) -> discord.Embed:
    """A page of picks; ``skip`` picks were shown before it ("Show 5 more"); ``poster``: the top pick's."""
    wanted = words.describe_filter(filters)
    title = "More movies for you" if skip else "Five movies for you"
    embed = discord.Embed(
        title=_clip(f"{title}: {wanted}" if wanted else title, 256),
        colour=COLOUR,
        description=_clip(words.explain_recommendations(recs), 300),
    )
    for i, pick in enumerate(recs.picks, skip + 1):
        embed.add_field(
            name=_clip(f"{i}. {pick.movie.display} — {stars(pick.stars)}", 256),
            value=_pick_value(pick),
            inline=False,
        )
    if not recs.picks:
        if wanted or skip:
            embed.description = "That's all I have for this list: try other filters, or rate a few more."
        else:
            embed.description = "You've rated everything I know. Impressive!"
    embed.set_footer(text=f"Served by: {_path(recs.path)}")
    return _with_poster(embed, poster)


def _with_poster(embed: discord.Embed, poster: str | None) -> discord.Embed:
    if poster:
        embed.set_thumbnail(url=poster)
    return embed


def predict_embed(prediction: Prediction, *, poster: str | None = None) -> discord.Embed:
    explanation = _clip(words.explain_prediction(prediction), 500)
    embed = discord.Embed(
        title=_clip(prediction.movie.display, 256),
        colour=COLOUR,
        description=_with_links(
            f"I think you'd give it **{stars(prediction.stars)}**.\n{explanation}", prediction.movie
        ),
    )
    if prediction.movie.genres:
        embed.add_field(name="Genres", value=_clip(", ".join(prediction.movie.genres), 1024))
    embed.set_footer(text=f"Served by: {_path(prediction.path)}")
    return _with_poster(embed, poster)


def similar_embed(movie: Movie, picks: Sequence[Pick], *, poster: str | None = None) -> discord.Embed:
    embed = discord.Embed(title=_clip(f"Movies like {movie.display}", 256), colour=COLOUR)
    if not picks:
        embed.description = "I don't know enough about this movie to find look-alikes yet."
    else:
        embed.description = movie_links(movie) or None
    for i, pick in enumerate(picks, 1):
        embed.add_field(name=_clip(f"{i}. {pick.movie.display}", 256), value=_pick_value(pick), inline=False)
    return _with_poster(embed, poster)


def movie_list_embed(title: str, movies: Sequence[Movie], empty: str, limit: int = 25) -> discord.Embed:
    """The watchlist or the hidden movies: one line per movie with its links."""
    lines = []
    for movie in movies[:limit]:
        links = movie_links(movie)
        name = discord.utils.escape_markdown(movie.display)
        lines.append(f"**{name}**" + (f" · {links}" if links else ""))
    if len(movies) > limit:
        lines.append(f"…and {len(movies) - limit} more.")
    embed = discord.Embed(
        title=_clip(title, 256), colour=COLOUR, description=_clip("\n".join(lines) or empty, 4000)
    )
    if movies:
        embed.set_footer(text=words.plural(len(movies), "movie"))
    return embed


def ratings_embed(rows: Sequence[tuple[Movie, StoredRating]], page: int, user_name: str) -> discord.Embed:
    """One page of a member's ratings, newest first; ``page`` is 1-based and already in range."""
    pages = max(1, math.ceil(len(rows) / RATINGS_PER_PAGE))
    start = (page - 1) * RATINGS_PER_PAGE
    lines = []
    for movie, rating in rows[start : start + RATINGS_PER_PAGE]:
        links = movie_links(movie)
        name = discord.utils.escape_markdown(movie.display)
        line = f"{stars(rating.stars)} **{name}** · {_when(rating.rated_at)}"
        lines.append(f"{line} · {links}" if links else line)
    embed = discord.Embed(
        title=_clip(f"{user_name}'s ratings", 256),
        colour=COLOUR,
        description=_clip("\n".join(lines) or "No ratings yet: try `/rate`.", 4000),
    )
    embed.set_footer(text=f"Page {page} of {pages} · {len(rows)} rating{'s' if len(rows) != 1 else ''}")
    return embed


def ratings_pages(n_rows: int) -> int:
    return max(1, math.ceil(n_rows / RATINGS_PER_PAGE))


def forget_prompt(n_ratings: int | None = None) -> str:
    return (
        "This deletes **all** your ratings, in every server, and cannot be undone. Are you sure?"
        if n_ratings is None
        else f"This deletes **all {n_ratings}** of your ratings, in every server, and cannot be undone. Sure?"
    )
