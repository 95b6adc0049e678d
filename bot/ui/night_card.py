"""Every word of a movie night (/movienight): its public card, its poll, the private answers to
presses and the refusals. What ``words.py`` and ``render.py`` are for the rest, in one place here.

Members are named by mention (the bot sends with no allowed mentions, so nobody is pinged).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import discord

from bot.ui.render import COLOUR, movie_links
from bot.ui.words import describe_filter, plural, stars
from recommender.core.types import Movie
from recommender.serving.contract import (
    MAX_GROUP,
    MIN_GROUP,
    GroupPicks,
    GroupReason,
    MovieNight,
    MovieNightEnd,
    MovieNightState,
    NightProblem,
    PopularityReason,
)

__all__ = [
    "POLL_HOURS",
    "POLL_QUESTION",
    "already_in",
    "auto_picked",
    "handed_over",
    "joined",
    "jump_url",
    "left",
    "mention",
    "night_embed",
    "night_refused",
    "poll_of",
    "rerolled",
]

POLL_QUESTION = "Which one do we watch?"
POLL_HOURS = 24
POLL_ANSWER_MAX = 55  # Discord's limit on a poll answer
HOW_PICKED = (
    "Stars are what I predict each member would give; picks are ranked so nobody is likely to dislike one."
)
START_ANOTHER = "Start another with `/movienight`."


def mention(user_id: int) -> str:
    return f"<@{user_id}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(timestamp: float, style: str) -> str:
    return discord.utils.format_dt(datetime.fromtimestamp(timestamp, tz=UTC), style)  # type: ignore[arg-type]


def _title(text: str, night: MovieNight) -> str:
    wanted = describe_filter(night.filters)
    return _clip(f"🍿 {text}: {wanted}" if wanted else f"🍿 {text}", 256)


def jump_url(night: MovieNight) -> str | None:
    if night.message_id is None:
        return None
    return f"https://discord.com/channels/{night.guild_id or '@me'}/{night.channel_id}/{night.message_id}"


# -- the card -------------------------------------------------------------------------------------
def night_embed(night: MovieNight, picks: GroupPicks | None = None, *, notice: str = "") -> discord.Embed:
    """The public card as it should look now; ``picks`` once picked, ``notice`` says what just changed."""
    if night.state is MovieNightState.CLOSED:
        embed = discord.Embed(title=_title("Movie night, no pick", night), colour=COLOUR)
        embed.description = _ended(night)
        return embed
    if night.state is MovieNightState.PICKED:
        if picks is None:
            raise ValueError("a picked movie night's card needs its picks")
        return _picks_embed(night, picks, notice)
    embed = discord.Embed(title=_title("Movie night", night), colour=COLOUR)
    lines = [
        f"Hosted by {mention(night.host_id)}. Press **I'm in** to join: you can only add yourself, "
        f"and {MIN_GROUP} to {MAX_GROUP} members can take part.",
        f"When everyone's in, the host presses **Pick**; otherwise I pick {_when(night.closes_at, 'R')} "
        f"(at {_when(night.closes_at, 't')}).",
    ]
    if notice:
        lines.insert(0, notice)
    embed.description = "\n".join(lines)
    members = ", ".join(mention(m) for m in night.members) or "nobody yet"
    embed.add_field(name=f"In ({len(night.members)})", value=_clip(members, 1024), inline=False)
    embed.set_footer(text="I'll pick 3 movies nobody here has rated or hidden.")
    return embed


def _ended(night: MovieNight) -> str:
    if night.end is MovieNightEnd.EVERYONE_LEFT:
        return f"Everyone left, so this movie night is cancelled. {START_ANOTHER}"
    if night.end is MovieNightEnd.NOT_POSTED:
        return f"This movie night could not start. {START_ANOTHER}"
    who = f"only {mention(night.members[0])} was in" if night.members else "nobody was in"
    return (
        f"Time's up and {who}: a movie night needs at least {MIN_GROUP} members, so no pick this time. "
        + START_ANOTHER
    )


def _picks_embed(night: MovieNight, picks: GroupPicks, notice: str) -> discord.Embed:
    embed = discord.Embed(title=_title("Movie night picks", night), colour=COLOUR)
    who = ", ".join(mention(t.user_id) for t in picks.members)
    lines = [notice] if notice else []
    lines.append(f"For {who} (hosted by {mention(night.host_id)}).")
    lines += _notes(picks)
    if not picks.picks:
        lines.append(
            "I found no movie that nobody here has rated or hidden"
            + (" among those not shown yet." if night.round_no > 1 else ".")
            + (" Try other filters." if night.filters.active else "")
        )
    embed.description = _clip("\n".join(lines), 4096)
    for n, pick in enumerate(picks.picks, 1):
        each = " · ".join(
            f"{mention(t.user_id)} {stars(s)}" for t, s in zip(picks.members, pick.stars, strict=True)
        )
        links = movie_links(pick.movie)
        value = _clip(each, 1024 - len(links) - 1)
        embed.add_field(
            name=_clip(f"{n}. {pick.movie.display}", 256),
            value=f"{value}\n{links}" if links else value,
            inline=False,
        )
    embed.set_footer(text=HOW_PICKED)
    return embed


def _notes(picks: GroupPicks) -> list[str]:
    """Who is counted with the crowd's view, and when the picks could not please everyone."""
    notes = []
    if any(t.popularity_reason is PopularityReason.NO_MODEL for t in picks.members):
        notes.append(
            "My taste model isn't available right now, so everyone is counted with the crowd's view."
        )
    else:
        fresh = [t.user_id for t in picks.members if t.popularity_reason is PopularityReason.NO_RATINGS]
        unknown = [t.user_id for t in picks.members if t.popularity_reason is PopularityReason.UNKNOWN_MOVIES]
        if fresh:
            names = ", ".join(mention(u) for u in fresh)
            notes.append(
                f"No ratings yet, so counted with the crowd's view: {names}. (`/rate` a few movies!)"
            )
        if unknown:
            names = ", ".join(mention(u) for u in unknown)
            notes.append(
                f"Rated only movies my model doesn't know yet, so counted with the crowd's view: {names}."
            )
    if GroupReason.FLOOR_RELAXED in picks.reasons and picks.floor is not None:
        notes.append(
            "Few movies suit everyone here, so some picks may not please everybody: "
            f"nobody is predicted under {stars(picks.floor)}."
        )
    return notes


def auto_picked(night: MovieNight) -> str:
    return f"Time's up: I picked for the {plural(len(night.members), 'member')} who joined."


def rerolled() -> str:
    return "Re-rolled: none of these were on the card before."


def handed_over(old: int, new: int) -> str:
    return f"{mention(old)} left, so {mention(new)} is the host now."


# -- the poll ---------------------------------------------------------------------------------
def poll_of(movies: Sequence[Movie]) -> discord.Poll:
    """A native Discord poll of the picks, one answer each, open for ``POLL_HOURS``."""
    poll = discord.Poll(POLL_QUESTION, duration=timedelta(hours=POLL_HOURS))
    for movie in movies:
        poll.add_answer(text=_clip(movie.display, POLL_ANSWER_MAX))
    return poll


# -- private answers ----------------------------------------------------------------------------
def joined(night: MovieNight) -> str:
    return f"You're in! {plural(len(night.members), 'member')} so far."


def already_in() -> str:
    return "You're already in this movie night."


def left(user_id: int, before: MovieNight, after: MovieNight, was_in: bool) -> str:
    if not was_in:
        return "You weren't in this movie night, so nothing changed."
    if after.state is MovieNightState.CLOSED:
        return "You're out. Nobody is left, so this movie night is cancelled."
    if before.host_id == user_id and after.host_id != user_id:
        return f"You're out. {mention(after.host_id)} is the host now."
    return "You're out."


def night_refused(code: NightProblem, night: MovieNight | None) -> str:
    """What a member reads when a movie night refuses a press or a second /movienight."""
    host = mention(night.host_id) if night is not None else "the host"
    if code is NightProblem.ALREADY_OPEN:
        link = jump_url(night) if night is not None else None
        where = f": {link}" if link else ""
        return (
            f"There's already a movie night open in this channel, hosted by {host}{where}. Join that one; "
            "a new one can start here once it has its picks."
        )
    return {
        NightProblem.UNKNOWN: f"I can't find this movie night any more. {START_ANOTHER}",
        NightProblem.PICKED: (
            "This movie night already has its picks on the card, so that changes nothing. "
            f"The host can re-roll. {START_ANOTHER}"
        ),
        NightProblem.OVER: f"This movie night is over. {START_ANOTHER}",
        NightProblem.NOT_HOST: f"Only the host, {host}, can pick, re-roll or open the poll.",
        NightProblem.FULL: (
            f"Sorry, this movie night is full: {MAX_GROUP} members is the most I pick for. "
            "You could start another in a different channel."
        ),
        NightProblem.TOO_FEW: (
            f"A movie night needs at least {MIN_GROUP} members: wait for someone to press **I'm in**."
        ),
        NightProblem.NOT_PICKED: "There are no picks to do that with yet.",
        NightProblem.POLLED: "These picks have a poll already: look for it in the channel.",
    }[code]
