"""Retrains from the bot's side: who started one, who waits for it, and where its result goes.

A ``/retrain`` reply is an interaction whose token lives 15 minutes. Progress edits that reply while
the token is good; the result edits it too if it still can, and otherwise (a long run, or Discord
answers that the webhook is gone) goes to the interaction's channel as a message that mentions the
admin. An admin who runs ``/retrain`` while this process trains is put on the same list and gets
the result the same way. A scheduled run posts to ``ADMIN_CHANNEL_ID`` when set, and so does a run
that a restart interrupted once the service has recorded it. Every outcome is stored by the service,
so ``/stats`` shows it after a restart whether or not anyone was told.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import discord

from bot.ui import reports, words
from recommender.core.config import Settings
from recommender.core.errors import RetrainInProgress
from recommender.pipeline.protocol import Done, Event
from recommender.serving.contract import MovieService, RetrainRecord


class RetrainBot(Protocol):
    """What the retrainer needs from the bot (``MovieBot``)."""

    settings: Settings
    service: MovieService

    def get_channel(self, id: int, /) -> Any: ...

    async def fetch_channel(self, channel_id: int, /) -> Any: ...


__all__ = ["PROGRESS_INTERVAL", "TOKEN_MARGIN", "ProgressReporter", "Retrainer", "token_valid"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between edits: Discord rate-limits message edits
#: Stop using an interaction's token this long before Discord's 15 minutes are up.
TOKEN_MARGIN = 60.0


def token_valid(interaction: discord.Interaction, *, margin: float = TOKEN_MARGIN) -> bool:
    """Whether the token has more than ``margin`` seconds left (discord.py's clock, as it judges it)."""
    return (interaction.expires_at - discord.utils.utcnow()).total_seconds() > margin


def _expired(exc: discord.HTTPException) -> bool:
    # 10015 Unknown Webhook / 50027 Invalid Webhook Token: the interaction's token is gone
    return exc.status in (401, 404) or exc.code in (10015, 50027)


class ProgressReporter:
    """Edits the deferred reply as epochs finish, at most once per ``interval`` seconds, and only
    while the interaction's token is good (a run can outlast it)."""

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interaction = interaction
        self.interval = interval
        self.clock = clock
        self.last_edit: float | None = None
        self.edits = 0
        self.events = 0
        self.gave_up = False

    async def __call__(self, event: Event) -> None:
        self.events += 1
        if isinstance(event, Done) or self.gave_up:
            return  # the final message is written by the retrainer
        now = self.clock()
        if self.last_edit is not None and now - self.last_edit < self.interval:
            return
        if not token_valid(self.interaction):
            self.gave_up = True
            return
        self.last_edit = now
        try:
            await self.interaction.edit_original_response(content=reports.retrain_progress(event))
            self.edits += 1
        except discord.HTTPException as exc:
            # Progress is a courtesy: a failed edit must not abort the training run.
            self.gave_up = _expired(exc)
            log.warning("could not edit /retrain progress: %s", exc)


@dataclass
class Run:
    trigger: str
    started: float = field(default_factory=time.time)
    #: /retrain interactions to answer with the result: the starter's first, then those who joined
    listeners: list[discord.Interaction] = field(default_factory=list)


class Retrainer:
    """One run at a time from this process, for ``/retrain`` and the loop alike."""

    def __init__(self, bot: RetrainBot) -> None:
        self.bot = bot
        self.current: Run | None = None

    @property
    def running(self) -> bool:
        return self.current is not None

    def join(self, interaction: discord.Interaction) -> Run | None:
        """Put an admin on the running run's list; None if this process is not training."""
        if self.current is None:
            return None
        self.current.listeners.append(interaction)
        return self.current

    async def run(
        self,
        *,
        trigger: str,
        interaction: discord.Interaction | None = None,
        new_ratings: int | None = None,
    ) -> Done:
        """Train through the service and deliver the result. Raises ``RetrainInProgress`` (or
        ``RetrainRunningElsewhere``) without starting anything."""
        if self.current is not None:
            raise RetrainInProgress()
        run = self.current = Run(trigger, listeners=[interaction] if interaction is not None else [])
        progress = ProgressReporter(interaction) if interaction is not None else None
        began = time.perf_counter()
        log.info("retrain started (%s)", trigger)
        try:
            result = await self.bot.service.retrain(progress, force=False, trigger=trigger)
        except Exception as exc:
            self.current = None
            # The starter hears of it from the error handler; those who joined were promised a result.
            others = Run(trigger, run.started, [i for i in run.listeners if i is not interaction])
            refused = isinstance(exc, RetrainInProgress)  # nothing ran: not news for the admin channel
            if others.listeners or (interaction is None and not refused):
                why = str(exc) if refused else type(exc).__name__
                await self.deliver(Done.failure(f"the retrain did not run to the end ({why})"), others)
            raise
        finally:
            self.current = None
        log.info(
            "retrain finished (%s) in %.1fs: published=%s version=%s reason=%s",
            trigger,
            time.perf_counter() - began,
            result.published,
            result.version,
            result.reason,
        )
        await self.deliver(result, run, new_ratings=new_ratings)
        return result

    async def deliver(self, result: Done, run: Run, *, new_ratings: int | None = None) -> None:
        for interaction in run.listeners:
            try:
                await self._answer(interaction, result)
            except Exception:
                log.exception("could not deliver the retrain result to %s", interaction.user.id)
        if not run.listeners:
            await self.post_admin(words.retrain_finished_scheduled(new_ratings), result)

    async def _answer(self, interaction: discord.Interaction, result: Done) -> None:
        """Edit the reply while the token is good; else a channel message that mentions the admin."""
        if token_valid(interaction):
            try:
                embed, files = _message(result)
                await interaction.edit_original_response(content=None, embed=embed, attachments=files)
                return
            except discord.HTTPException as exc:
                if not _expired(exc):
                    raise
                log.info("the /retrain token expired before the result; posting in the channel")
        channel = interaction.channel
        if channel is None or not hasattr(channel, "send"):
            channel = await self._channel(interaction.channel_id)
        if channel is None:
            await self.post_admin(words.retrain_finished_for(interaction.user.id), result)
            return
        await self._send(channel, words.retrain_finished_for(interaction.user.id), result, interaction.user)

    async def post_admin(self, text: str, result: Done | RetrainRecord) -> bool:
        """Post to ``ADMIN_CHANNEL_ID``; False when none is set or it can't be reached."""
        channel = await self._channel(self.bot.settings.admin_channel_id)
        if channel is None:
            return False
        try:
            await self._send(channel, text, result, None)
        except discord.HTTPException:
            log.exception("could not post the retrain result to the admin channel")
            return False
        return True

    async def _channel(self, channel_id: int | None) -> discord.abc.Messageable | None:
        if not channel_id:
            return None
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except discord.HTTPException:
                log.warning("channel %s can't be reached for retrain results", channel_id)
                return None
        return channel if isinstance(channel, discord.abc.Messageable) else None

    @staticmethod
    async def _send(
        channel: discord.abc.Messageable,
        text: str,
        result: Done | RetrainRecord,
        user: discord.abc.Snowflake | None,
    ) -> None:
        mentions = discord.AllowedMentions(users=[user] if user is not None else False)
        embed, files = _message(result)
        await channel.send(content=text, embed=embed, files=files, allowed_mentions=mentions)

    async def recover(self) -> RetrainRecord | None:
        """Record a run that a dead process left behind (see the service), and tell the admins."""
        record = await self.bot.service.recover_retrain()
        if record is not None:
            await self.post_admin(words.RETRAIN_RECOVERED, record)
        return record


def _files(result: Done | RetrainRecord) -> list[discord.File]:
    """The loss curve as an attachment (a new ``File`` per message: a file is read once)."""
    plot = getattr(result, "plot", None)
    if not plot:
        return []
    try:
        return [discord.File(plot, filename="loss.png")]
    except OSError:
        log.warning("retrain result names a loss curve that can't be read: %s", plot)
        return []


def _message(result: Done | RetrainRecord) -> tuple[discord.Embed, list[discord.File]]:
    embed, files = reports.retrain_result_embed(result), _files(result)
    if files:
        embed.set_image(url="attachment://loss.png")
    return embed, files
