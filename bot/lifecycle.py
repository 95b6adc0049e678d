"""Running and stopping the bot: signal handling, draining interactions in flight, the heartbeat.

``serve(bot, start)`` is what ``python -m bot`` runs: ``start`` is ``bot.start(token)`` in production
and a simcord-backed coroutine in the process tests, so both go through the same shutdown path.
On SIGTERM or SIGINT the bot stops taking new commands (it answers them "shutting down"), stops a
training run, waits for the interactions in flight, closes the gateway; the caller then closes
storage and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

__all__ = ["SHUTDOWN_MESSAGE", "InFlight", "Stoppable", "serve"]

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "I'm restarting right now and can't take new commands. Please try again in a minute."
DRAIN_TIMEOUT = 25.0  # plus up to WORKER_GRACE for the trainer: inside compose.yaml's 45 s stop_grace_period
WORKER_GRACE = 10.0


class Stoppable(Protocol):
    """What :func:`serve` needs from the bot (``MovieBot`` has it), so lifecycle need not import it."""

    async def shutdown(self, *, drain_timeout: float = DRAIN_TIMEOUT) -> None: ...


BotT = TypeVar("BotT", bound=Stoppable)
#: Runs the bot until Discord closes the connection: ``bot.start(token)`` in production.
Start = Callable[[BotT], Awaitable[None]]


class InFlight:
    """Counts interactions being handled, and refuses new ones once draining starts."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> bool:
        """Count one interaction in; False (and not counted) once draining."""
        if self.draining:
            return False
        self.count += 1
        self._idle.clear()
        return True

    def leave(self) -> None:
        self.count = max(0, self.count - 1)
        if self.count == 0:
            self._idle.set()

    async def drain(self, within: float) -> bool:
        """Stop admitting and wait until nothing is in flight; False if ``within`` seconds ran out."""
        self.draining = True
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


async def serve(
    bot: BotT,
    start: Start[BotT],
    *,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    drain_timeout: float = DRAIN_TIMEOUT,
) -> str | None:
    """Run ``start(bot)`` until it returns or a signal arrives, then shut the bot down gracefully.

    Returns the name of the signal that stopped it (None if ``start`` returned by itself). Errors of
    ``start`` (a rejected token, ...) propagate after the bot is closed.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            log.info("received %s: shutting down gracefully (pid %d)", sig.name, os.getpid())
        else:
            log.info("received %s again: already shutting down", sig.name)
        received.append(sig.name)
        stop.set()

    installed = []
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / Windows
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    runner = asyncio.create_task(start(bot), name="bot-start")
    stopper = asyncio.create_task(stop.wait(), name="bot-stop-signal")
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not runner.done():
            await bot.shutdown(drain_timeout=drain_timeout)
            # bot.start() returns once the bot is closed; a test driver may need a nudge.
            done, _ = await asyncio.wait({runner}, timeout=5.0)
            if not done:
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        else:
            await bot.shutdown(drain_timeout=drain_timeout)
            runner.result()
    finally:
        stopper.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return received[0] if received else None
