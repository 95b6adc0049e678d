"""Embeds and messages: how results look in Discord. No logic beyond formatting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import discord

from bot.ui import words
from bot.ui.words import stars
from recommender.core.types import Movie
from recommender.persistence.storage import StoredRating
from recommender.pipeline.protocol import Done, Epoch, Event, Start
from recommender.serving.contract import (
    Pick,
    PickFilter,
    Prediction,
    RatingResult,
    Recommendations,
    ServiceStats,
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
    "retrain_progress",
    "retrain_result_embed",
    "similar_embed",
    "stars",
    "stats_embed",
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


def _metric_lines(metrics: Mapping[str, object], limit: int = 10) -> str:
    lines = []
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
        lines.append(f"`{key}` {shown}")
        if len(lines) >= limit:
            break
    return "\n".join(lines) or "—"


def retrain_progress(event: Event) -> str:
    """One line of progress for the message being edited during a retrain."""
    if isinstance(event, Epoch):
        text = f"Training… epoch {event.epoch}/{event.epochs}"
        for key, value in (("loss", event.loss), ("val_loss", event.val_loss)):
            if value is not None:
                text += f" · {key} {value:.4f}"
        return text
    if isinstance(event, Start):
        return "Training started in the worker…"
    return f"Training… ({event.kind})"


def retrain_result_embed(done: Done) -> discord.Embed:
    published, version, reason = done.published, done.version, done.reason
    if published:
        embed = discord.Embed(
            title="New model published",
            colour=discord.Colour.green(),
            description=_clip(f"Now serving version `{version}`. {reason}".strip(), 4000),
        )
    else:
        embed = discord.Embed(
            title="Retrain finished: not published",
            colour=discord.Colour.orange(),
            description=_clip(reason or "The new model was not better than the one serving.", 4000),
        )
    metrics = done.metrics
    if metrics:
        embed.add_field(name="Metrics", value=_clip(_metric_lines(metrics), 1024), inline=False)
    return embed


def last_retrain_line(done: Done, finished_at: float | None = None) -> str:
    """How the last retrain ended, in one line: published, held back, or failed (and why)."""
    when = f" {_when(finished_at)}" if finished_at else ""
    reason = _clip(done.reason, 300)
    if done.published:
        return f"published `{done.version}`{when}"
    if not done.ok or not done.version:
        return f"**failed**{when}: {reason}"
    return f"not published{when}: {reason}"


def _interaction_lines(
    interactions: Mapping[str, float | int],
    by_command: Mapping[str, tuple[int, int]] | None,
    autocomplete: Mapping[str, int] | None,
) -> str:
    lines = [f"total {interactions.get('interactions', 0):,} · errors {interactions.get('errors', 0):,}"]
    if "latency_p50_ms" in interactions:
        p50, p99 = interactions["latency_p50_ms"], interactions["latency_p99_ms"]
        lines.append(f"latency p50 {p50:.1f} ms · p99 {p99:.1f} ms")
    if by_command:
        lines.append(" · ".join(f"/{name} {n} ({err} err)" for name, (n, err) in by_command.items()))
    paths = {k[5:]: v for k, v in interactions.items() if k.startswith("path_")}
    if paths:
        lines.append("paths: " + " · ".join(f"{k} {v}" for k, v in paths.items()))
    if autocomplete:
        ok, failed = autocomplete.get("ok", 0), autocomplete.get("failed", 0)
        lines.append(f"autocomplete {ok:,} ok · {failed:,} failed")
    return "\n".join(lines)


def stats_embed(
    stats: ServiceStats,
    *,
    interactions: Mapping[str, float | int] | None = None,
    by_command: Mapping[str, tuple[int, int]] | None = None,
    autocomplete: Mapping[str, int] | None = None,
    last_retrain: Done | None = None,
    last_retrain_at: float | None = None,
) -> discord.Embed:
    """``service.stats()`` (a ``ServiceStats``) plus the bot's own interaction counters."""
    embed = discord.Embed(title="Recommender stats", colour=COLOUR)
    embed.add_field(name="Ratings", value=f"{stats.ratings:,}")
    embed.add_field(name="Members", value=f"{stats.members:,}")
    embed.add_field(name="Movies", value=f"{stats.catalog_size:,}")
    version = stats.model_version
    family = f" ({stats.model_family})" if stats.model_family else ""
    embed.add_field(
        name="Model version", value=f"`{version}`{family}" if version else "none yet", inline=False
    )
    embed.add_field(name="Model status", value=_clip(str(stats.model_status), 1024), inline=False)
    embed.add_field(name="Trained", value=_when(stats.model_trained_at))
    embed.add_field(name="New ratings since", value=f"{stats.ratings_since_training:,}")
    embed.add_field(name="Retrain", value="running now" if stats.retrain_running else "idle")
    if stats.model_metrics:
        embed.add_field(name="Metrics", value=_clip(_metric_lines(stats.model_metrics), 1024), inline=False)
    if last_retrain:
        line = last_retrain_line(last_retrain, last_retrain_at)
        embed.add_field(name="Last retrain", value=_clip(line, 1024), inline=False)
    if interactions:
        embed.add_field(
            name="Interactions",
            value=_clip(_interaction_lines(interactions, by_command, autocomplete), 1024),
            inline=False,
        )
    return embed
