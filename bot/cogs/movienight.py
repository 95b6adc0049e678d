"""``/movienight``: one pick a whole group will enjoy, on a public card members join themselves.

The command opens the night (one per channel) and posts its card; the card's buttons live in
``bot/ui/night_buttons.py``. A background loop closes nights whose time has come: it picks for
those who joined (or says why it can't) and edits the card, also for nights opened before a
restart, since every night is stored.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.checks import per_user_cooldown
from bot.client import MovieBot
from bot.cooldowns import LIMITS
from bot.ui import night_card
from bot.ui.filters import filter_choices, pick_filter
from bot.ui.night_buttons import night_view
from recommender.core.config import MOVIENIGHT_MAX_MINUTES
from recommender.serving.contract import GroupPicks, MovieNight, MovieNightEnd, MovieNightState

log = logging.getLogger(__name__)

#: How often the loop looks for nights whose time has come: a night closes at most this late.
CHECK_SECONDS = 30.0


def movienight_command(bot: MovieBot) -> app_commands.Command[None, ..., None]:
    """``/movienight`` with the stored catalogue's genres as choices, known only at run time."""

    @app_commands.command(name="movienight")
    @app_commands.describe(
        genre="Only movies of this genre",
        decade="Only movies from this decade",
        minutes=f"Minutes to join before I pick by myself (default {bot.settings.movienight_minutes})",
    )
    @app_commands.choices(**filter_choices(bot.service.genres()))
    @app_commands.guild_only()
    @per_user_cooldown(*LIMITS["movienight"])
    async def movienight(
        interaction: discord.Interaction,
        genre: str | None = None,
        decade: int | None = None,
        minutes: app_commands.Range[int, 1, MOVIENIGHT_MAX_MINUTES] | None = None,
    ) -> None:
        """Pick a movie the whole group will enjoy: press I'm in to join; the host presses Pick."""
        filters = pick_filter(genre, decade)
        now = discord.utils.utcnow().timestamp()
        wait = (minutes or bot.settings.movienight_minutes) * 60
        channel_id = interaction.channel_id
        assert channel_id is not None  # guild_only: always in a channel
        # The interaction's id names the night: unique, and the same on every database.
        night = await bot.service.open_movie_night(
            interaction.id,
            channel_id,
            interaction.guild_id,
            interaction.user.id,
            opened_at=now,
            closes_at=now + wait,
            pick_filter=filters,
        )
        try:
            embed, view = night_card.night_embed(night), night_view(night)
            await interaction.response.send_message(embed=embed, view=view)
            card = await interaction.original_response()
        except Exception:
            # No card, no way to join: free the channel rather than block it until the night's time.
            await bot.service.close_movie_night(night.night_id, end=MovieNightEnd.NOT_POSTED)
            raise
        await bot.service.set_movie_night_message(night.night_id, card.id)

    return movienight


class MovieNightCog(commands.Cog):
    """Movie nights: the command, and the loop that closes them on time."""

    def __init__(self, bot: MovieBot) -> None:
        self.bot = bot
        self.command = movienight_command(bot)
        self.closer = tasks.loop(seconds=CHECK_SECONDS)(self.close_due)
        self.closer.before_loop(self._before_closer)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.closer.start()

    async def cog_unload(self) -> None:
        self.closer.cancel()
        self.bot.tree.remove_command(self.command.name)

    async def _before_closer(self) -> None:
        await self.bot.wait_until_ready()

    async def close_due(self) -> int:
        """Close every night whose time has come; how many cards were updated. Never raises: one
        night that fails (a deleted card, the database away) must not stop the others or the loop."""
        if self.bot.in_flight.draining:
            return 0
        now = discord.utils.utcnow().timestamp()
        try:
            due = await self.bot.service.due_movie_nights(now)
        except Exception:
            log.exception("could not look for movie nights to close")
            return 0
        shown = 0
        for night in due:
            try:
                after, picks = await self.bot.service.close_movie_night(night.night_id)
                if after.state is MovieNightState.OPEN:
                    continue
                shown += await self._show(after, picks)
            except Exception:
                log.exception("closing movie night %d failed; the next check tries again", night.night_id)
        return shown

    async def _show(self, night: MovieNight, picks: GroupPicks | None) -> int:
        if night.state is MovieNightState.PICKED and picks is None:
            return 0  # the host picked in the meantime: the card shows it already
        log.info("movie night %d closed on time: %s", night.night_id, night.state.value)
        if night.message_id is None:
            return 0
        notice = night_card.auto_picked(night) if picks is not None else ""
        channel = self.bot.get_partial_messageable(night.channel_id, guild_id=night.guild_id)
        try:
            await channel.get_partial_message(night.message_id).edit(
                embed=night_card.night_embed(night, picks, notice=notice), view=night_view(night)
            )
        except discord.HTTPException as exc:
            # The card was deleted or the bot lost access to the channel: the night is closed anyway.
            log.warning("could not update movie night %d's card: %s", night.night_id, exc)
            return 0
        return 1


async def setup(bot: MovieBot) -> None:
    await bot.add_cog(MovieNightCog(bot))
