"""The buttons on a movie night's card, which keep working after a restart.

One ``discord.ui.DynamicItem`` whose ``custom_id`` is ``mn:<action>:<night id>``: the night's state
(who is in, who hosts, which picks were shown) lives in the database, so a press after a restart
reads it back. A press carries no member id: *I'm in* and *I'm out* can only ever add or remove
the member who pressed. Who may Pick, Re-roll or open the Poll (the host) is the service's rule.
Every press runs through :func:`bot.gate.run_component`, like every other button.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.cooldowns import LIMITS
from bot.gate import run_component
from bot.ui import night_card
from bot.ui.components import service_of
from recommender.serving.contract import MovieNight, MovieNightState

__all__ = ["ACTIONS", "NIGHT_ITEMS", "NightButton", "night_view"]

ACTIONS = ("join", "leave", "pick", "reroll", "poll")
_LOOKS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "join": ("I'm in", discord.ButtonStyle.success),
    "leave": ("I'm out", discord.ButtonStyle.secondary),
    "pick": ("Pick", discord.ButtonStyle.primary),
    "reroll": ("Re-roll", discord.ButtonStyle.secondary),
    "poll": ("Poll", discord.ButtonStyle.primary),
}
#: The host's presses that score the whole group share one per-member budget with /movienight.
_COSTLY = {"pick", "reroll"}


class NightButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=rf"mn:(?P<action>{'|'.join(ACTIONS)}):(?P<night>[0-9]{{1,20}})",
):
    def __init__(self, action: str, night_id: int) -> None:
        self.action, self.night_id = action, night_id
        label, style = _LOOKS[action]
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"mn:{action}:{night_id}"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Any:
        return cls(match["action"], int(match["night"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        act = _HANDLERS[self.action]

        async def action(interaction: discord.Interaction) -> None:
            await act(interaction, self.night_id)

        cooldown = ("movienight", *LIMITS["movienight"]) if self.action in _COSTLY else None
        await run_component(interaction, f"mn:{self.action}", action, owner_id=None, cooldown=cooldown)


def night_view(night: MovieNight) -> discord.ui.View | None:
    """The card's buttons for the night as it is now (none once it is over)."""
    if night.state is MovieNightState.CLOSED:
        return None
    view = discord.ui.View(timeout=None)
    if night.state is MovieNightState.OPEN:
        actions = ["join", "leave", "pick"]
    else:
        actions = ["poll"] if len(night.picks) >= 2 and not night.polled else []
        actions.append("reroll")
    for action in actions:
        view.add_item(NightButton(action, night.night_id))
    return view


async def _show(interaction: discord.Interaction, night: MovieNight, **card: Any) -> None:
    """Edit the card the button sits on."""
    view = night_view(night)
    await interaction.response.edit_message(embed=night_card.night_embed(night, **card), view=view)


async def _join(interaction: discord.Interaction, night_id: int) -> None:
    night, new = await service_of(interaction).join_movie_night(night_id, interaction.user.id)
    if not new:
        await interaction.response.send_message(night_card.already_in(), ephemeral=True)
        return
    await _show(interaction, night)
    await interaction.followup.send(night_card.joined(night), ephemeral=True)


async def _leave(interaction: discord.Interaction, night_id: int) -> None:
    service, user = service_of(interaction), interaction.user.id
    before = await service.movie_night(night_id)
    after, was_in = await service.leave_movie_night(night_id, user)
    answer = night_card.left(user, before, after, was_in)
    if not was_in:
        await interaction.response.send_message(answer, ephemeral=True)
        return
    changed_host = after.state is MovieNightState.OPEN and after.host_id != before.host_id
    notice = night_card.handed_over(before.host_id, after.host_id) if changed_host else ""
    await _show(interaction, after, notice=notice)
    await interaction.followup.send(answer, ephemeral=True)


async def _pick(interaction: discord.Interaction, night_id: int) -> None:
    night, picks = await service_of(interaction).pick_movie_night(night_id, interaction.user.id)
    await _show(interaction, night, picks=picks)


async def _reroll(interaction: discord.Interaction, night_id: int) -> None:
    night, picks = await service_of(interaction).pick_movie_night(night_id, interaction.user.id, reroll=True)
    await _show(interaction, night, picks=picks, notice=night_card.rerolled())


async def _poll(interaction: discord.Interaction, night_id: int) -> None:
    night, movies = await service_of(interaction).poll_movie_night(night_id, interaction.user.id)
    # The card loses its Poll button; the poll itself is a message of its own in the channel.
    await interaction.response.edit_message(view=night_view(night))
    await interaction.followup.send(poll=night_card.poll_of(movies))


_HANDLERS: dict[str, Callable[[discord.Interaction, int], Awaitable[None]]] = {
    "join": _join,
    "leave": _leave,
    "pick": _pick,
    "reroll": _reroll,
    "poll": _poll,
}

NIGHT_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (NightButton,)
