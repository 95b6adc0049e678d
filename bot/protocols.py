"""What the bot's parts need from the running bot, as a Protocol, so they need not import it.

Checks, transformers and views get ``interaction.client`` typed as a plain ``discord.Client``;
``isinstance(client, BotState)`` narrows it to what ``MovieBot`` provides, without an import of
``bot.client`` (which imports them) and without attribute guessing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.cooldowns import Cooldowns
from bot.lifecycle import InFlight
from bot.telemetry import InteractionStats
from recommender.core.config import Settings
from recommender.serving.contract import MovieService

__all__ = ["BotState"]


@runtime_checkable
class BotState(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def service(self) -> MovieService: ...

    @property
    def cooldowns(self) -> Cooldowns: ...

    @property
    def interaction_stats(self) -> InteractionStats: ...

    @property
    def in_flight(self) -> InFlight: ...
