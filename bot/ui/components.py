"""Buttons and selects under the bot's messages, which keep working after a restart.

Each is a ``discord.ui.DynamicItem`` whose ``custom_id`` carries everything a press needs
(``rec:hide:<owner>:<movie>``); ``MovieBot.setup_hook`` registers them with ``add_dynamic_items``,
so no state lives only in memory. Every press runs through :func:`bot.gate.run_component`: the
same shutdown gate, budgets, telemetry and error messages as a command, and only the member whose
list it is may press it (the owner's id is in the ``custom_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bot.cooldowns import LIMITS
from bot.errors import unwrap
from bot.gate import Action, run_component
from bot.protocols import BotState
from bot.ui import render, words
from recommender.core.errors import InvalidStars, UnknownMovie
from recommender.core.types import Movie, RatingScale
from recommender.serving.contract import MovieService, Pick, PickFilter

__all__ = [
    "DYNAMIC_ITEMS",
    "PAGE",
    "pick_view",
    "stars_view",
    "suggestion_view",
]

PAGE = 5  # picks per message: one row of buttons each, and Discord allows five rows
MAX_OPTIONS = 25  # Discord's limit per select
OWNER = r"(?P<owner>[0-9]{1,20})"
_MOVIE = r"(?P<movie>[0-9]{1,18})"
_YEARS = r"(?P<y0>[0-9]{0,4}):(?P<y1>[0-9]{0,4})"
_MORE = rf"rec:more:{OWNER}:(?P<skip>[0-9]{{1,5}}):(?P<genre>[^:]{{0,40}}):{_YEARS}"
_SUGGEST = rf"pick:(?P<action>rate|predict|similar|unrate):{OWNER}:{_MOVIE}(?::(?P<stars>[0-9.]{{1,8}}))?"
_SUGGESTED = ("rate", "predict", "similar", "unrate")  # commands whose "not found" offers buttons


def service_of(interaction: discord.Interaction) -> MovieService:
    client = interaction.client
    if not isinstance(client, BotState):
        raise RuntimeError("component pressed on a client that is not MovieBot")
    return client.service


def _cooldown(name: str) -> tuple[str, int, float]:
    return (name, *LIMITS[name])


def short_name(movie: Movie, limit: int = 80) -> str:
    text = movie.display
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Owned:
    """What every item here shares: the owner in its custom id, and the gate around its action."""

    owner_id: int
    name: str

    async def _run(
        self, interaction: discord.Interaction, action: Action, cooldown: str | None = None
    ) -> None:
        limit = _cooldown(cooldown) if cooldown else None
        await run_component(interaction, self.name, action, owner_id=self.owner_id, cooldown=limit)


class _MovieButton(Owned, discord.ui.DynamicItem[discord.ui.Button], template=r"rec:_:_"):
    """A button about one movie of one member's list: ``rec:<kind>:<owner>:<movie>``."""

    kind = "_"

    def __init__(self, owner_id: int, movie_id: int, label: str, *, row: int | None = None) -> None:
        self.owner_id, self.movie_id, self.name = owner_id, movie_id, f"rec:{self.kind}"
        style = discord.ButtonStyle.primary if self.kind == "rate" else discord.ButtonStyle.secondary
        button = discord.ui.Button(
            label=label, style=style, custom_id=f"rec:{self.kind}:{owner_id}:{movie_id}"
        )
        super().__init__(button, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Any:
        return cls(int(match["owner"]), int(match["movie"]), item.label or cls.kind)

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._run(interaction, self.act)

    async def act(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class RateButton(_MovieButton, template=rf"rec:rate:{OWNER}:{_MOVIE}"):
    kind = "rate"

    async def act(self, interaction: discord.Interaction) -> None:
        service = service_of(interaction)
        movie = _known(service, self.movie_id)
        view = stars_view(self.owner_id, movie.movie_id, service.scale)
        text = f"How many stars do you give **{discord.utils.escape_markdown(movie.display)}**?"
        await interaction.response.send_message(text, view=view, ephemeral=True)


class HideButton(_MovieButton, template=rf"rec:hide:{OWNER}:{_MOVIE}"):
    kind = "hide"

    async def act(self, interaction: discord.Interaction) -> None:
        service = service_of(interaction)
        movie = _known(service, self.movie_id)
        new = await service.hide(self.owner_id, movie.movie_id)
        await interaction.response.send_message(words.hidden_text(movie, new), ephemeral=True)


class WatchButton(_MovieButton, template=rf"rec:watch:{OWNER}:{_MOVIE}"):
    kind = "watch"

    async def act(self, interaction: discord.Interaction) -> None:
        service = service_of(interaction)
        movie = _known(service, self.movie_id)
        new = await service.add_to_watchlist(self.owner_id, movie.movie_id)
        await interaction.response.send_message(words.watchlist_text(movie, new), ephemeral=True)


class LikeButton(_MovieButton, template=rf"rec:like:{OWNER}:{_MOVIE}"):
    kind = "like"

    async def act(self, interaction: discord.Interaction) -> None:
        await _send_similar(interaction, self.owner_id, self.movie_id)


def _known(service: MovieService, movie_id: int) -> Movie:
    """The movie a custom id names, or ``UnknownMovie`` (another dataset since the list was shown)."""
    try:
        movie: Movie | None = service.resolve(str(movie_id))
    except UnknownMovie:
        movie = None
    if movie is None or movie.movie_id != movie_id:
        raise UnknownMovie(f"movie #{movie_id}")
    return movie


async def _send_similar(interaction: discord.Interaction, owner_id: int, movie_id: int) -> None:
    service = service_of(interaction)
    movie = _known(service, movie_id)
    picks = await service.similar(movie.movie_id, PAGE, user_id=owner_id)
    embed = render.similar_embed(movie, picks)
    view = pick_view(owner_id, picks)
    if interaction.message is not None and interaction.message.flags.ephemeral:
        await interaction.response.edit_message(content=None, embed=embed, view=view)
    else:
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)


class MoreButton(
    Owned,
    discord.ui.DynamicItem[discord.ui.Button],
    template=_MORE,
):
    """ "Show 5 more": the next page of the same list, edited in place."""

    def __init__(
        self, owner_id: int, skip: int, filters: PickFilter | None, *, row: int | None = None
    ) -> None:
        self.owner_id, self.skip, self.name = owner_id, skip, "rec:more"
        self.filters = filters or PickFilter()
        f = self.filters
        custom_id = f"rec:more:{owner_id}:{skip}:{f.genre or ''}:{f.year_from or ''}:{f.year_to or ''}"
        button = discord.ui.Button(
            label=f"Show {PAGE} more", style=discord.ButtonStyle.success, custom_id=custom_id
        )
        super().__init__(button, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Any:
        years = [int(match[k]) if match[k] else None for k in ("y0", "y1")]
        return cls(int(match["owner"]), int(match["skip"]), PickFilter(match["genre"] or None, *years))

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._run(interaction, self.act, cooldown="recommend")

    async def act(self, interaction: discord.Interaction) -> None:
        recs = await service_of(interaction).recommend(
            self.owner_id, PAGE, filters=self.filters, skip=self.skip
        )
        embed = render.recommend_embed(recs, self.filters, self.skip)
        view = pick_view(self.owner_id, recs.picks, filters=self.filters, skip=self.skip)
        await interaction.response.edit_message(embed=embed, view=view)


class StarsSelect(Owned, discord.ui.DynamicItem[discord.ui.Select], template=rf"rec:stars:{OWNER}:{_MOVIE}"):
    """The scale's star values for one movie; choosing one rates it."""

    def __init__(self, owner_id: int, movie_id: int, scale: RatingScale) -> None:
        self.owner_id, self.movie_id, self.scale, self.name = owner_id, movie_id, scale, "rec:stars"
        options = [
            discord.SelectOption(label=words.star_choice_name(v), value=f"{v:g}")
            for v in reversed(scale.classes[-MAX_OPTIONS:])
        ]
        select = discord.ui.Select(
            custom_id=f"rec:stars:{owner_id}:{movie_id}", placeholder="Your stars", options=options
        )
        super().__init__(select)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Select, match: re.Match[str], /
    ) -> Any:
        return cls(int(match["owner"]), int(match["movie"]), service_of(interaction).scale)

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._run(interaction, self.act, cooldown="rate")

    async def act(self, interaction: discord.Interaction) -> None:
        chosen = self.item.values[0] if self.item.values else ""
        stars = _stars(chosen, self.scale)
        result = await service_of(interaction).rate(self.owner_id, self.movie_id, stars, interaction.guild_id)
        await interaction.response.edit_message(content=render.rate_message(result), view=None)


def _stars(text: str, scale: RatingScale) -> float:
    """A select value as stars; a forged one gets the same refusal as ``/rate``'s."""
    try:
        return float(text[:8])
    except ValueError:
        raise InvalidStars(text[:20], scale) from None


class SuggestionButton(
    Owned,
    discord.ui.DynamicItem[discord.ui.Button],
    template=_SUGGEST,
):
    """One "did you mean" title under a "not found" message: pressing it finishes the command."""

    def __init__(
        self, action: str, owner_id: int, movie_id: int, label: str, stars: str | None = None
    ) -> None:
        self.action, self.owner_id, self.movie_id, self.stars = action, owner_id, movie_id, stars
        self.name = f"pick:{action}"
        custom_id = f"pick:{action}:{owner_id}:{movie_id}" + (f":{stars}" if stars else "")
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=custom_id)
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Any:
        args = (match["action"], int(match["owner"]), int(match["movie"]), item.label or "?")
        return cls(*args, match["stars"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._run(interaction, self.act, cooldown="rate" if self.action == "rate" else None)

    async def act(self, interaction: discord.Interaction) -> None:
        service = service_of(interaction)
        movie = _known(service, self.movie_id)
        if self.action == "similar":
            await _send_similar(interaction, self.owner_id, movie.movie_id)
            return
        if self.action == "rate":
            stars = _stars(self.stars or "", service.scale)
            result = await service.rate(self.owner_id, movie.movie_id, stars, interaction.guild_id)
            await interaction.response.edit_message(content=render.rate_message(result), view=None)
        elif self.action == "predict":
            embed = render.predict_embed(await service.predict(self.owner_id, movie.movie_id))
            await interaction.response.edit_message(content=None, embed=embed, view=None)
        else:
            removed = await service.unrate(self.owner_id, movie.movie_id)
            await interaction.response.edit_message(content=words.unrate_text(movie, removed), view=None)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    RateButton,
    HideButton,
    WatchButton,
    LikeButton,
    MoreButton,
    StarsSelect,
    SuggestionButton,
)


# ----------------------------------------------------------------------------- views
def pick_view(
    owner_id: int, picks: Sequence[Pick], *, filters: PickFilter | None = None, skip: int | None = None
) -> discord.ui.View:
    """A row of buttons per pick; with ``skip``, "Show 5 more" after a full page."""
    view = discord.ui.View(timeout=None)
    for row, pick in enumerate(picks[:PAGE]):
        n, movie_id = (skip or 0) + row + 1, pick.movie.movie_id
        view.add_item(RateButton(owner_id, movie_id, f"#{n} Rate", row=row))
        view.add_item(HideButton(owner_id, movie_id, "Not interested", row=row))
        view.add_item(WatchButton(owner_id, movie_id, "Watchlist", row=row))
        view.add_item(LikeButton(owner_id, movie_id, "More like this", row=row))
    if skip is not None and len(picks) >= PAGE:
        view.add_item(MoreButton(owner_id, skip + PAGE, filters, row=PAGE - 1))
    return view


def stars_view(owner_id: int, movie_id: int, scale: RatingScale) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(StarsSelect(owner_id, movie_id, scale))
    return view


def suggestion_view(interaction: discord.Interaction, error: BaseException) -> discord.ui.View | None:
    """Buttons for "did you mean" titles after a command's "not found", or None."""
    error = unwrap(error)
    command = interaction.command.qualified_name if interaction.command else ""
    if not isinstance(error, UnknownMovie) or not error.suggestions or command not in _SUGGESTED:
        return None
    stars = None
    if command == "rate":
        value = getattr(interaction.namespace, "stars", None)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        stars = f"{float(value):g}"
    view = discord.ui.View(timeout=None)
    for movie in error.suggestions[:5]:
        view.add_item(
            SuggestionButton(command, interaction.user.id, movie.movie_id, short_name(movie), stars)
        )
    return view
