"""Shutdown: the in-flight gate, refusing new commands once it begins, and serve() on a signal."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

from bot.lifecycle import SHUTDOWN_MESSAGE, InFlight

ROOT = Path(__file__).resolve().parents[2]


async def test_after_shutdown_begins_new_commands_are_refused_politely(
    simcord_env, world, fake_service, caplog
):
    bot = simcord_env.bot
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    bot.in_flight.draining = True
    caplog.set_level(logging.INFO, logger="bot.interactions")
    for name, options in (("rate", {"movie": "id:2", "stars": 3.0}), ("recommend", {}), ("stats", {})):
        actor = world.admin if name == "stats" else world.member
        refused = await actor.slash(world.channel, name, **options)
        assert refused.ephemeral and refused.response.content == SHUTDOWN_MESSAGE
    assert await world.member.autocomplete(world.channel, "rate", "movie", "toy") == []
    pressed = await world.member.click(prompt.response, label="Delete everything")
    assert pressed.response.content == SHUTDOWN_MESSAGE
    assert set(fake_service.ratings_by_user[world.member.id]) == {1}  # nothing new, nothing deleted
    assert [c[0] for c in fake_service.calls if c[0] not in ("search", "resolve")] == ["rate"]
    logged = [r.interaction["outcome"] for r in caplog.records if r.name == "bot.interactions"]  # type: ignore[attr-defined]
    assert logged == ["shutting_down"] * 3


async def test_in_flight_drain_waits_for_the_last_interaction():
    gate = InFlight()
    assert gate.enter() and gate.enter()
    waiter = asyncio.create_task(gate.drain(5))
    await asyncio.sleep(0)
    assert not gate.enter()  # refused once draining
    gate.leave()
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.leave()
    assert await waiter is True
    stuck = InFlight()
    stuck.enter()
    assert await stuck.drain(0.01) is False


_SERVE_IN_A_CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from bot.lifecycle import serve

class Bot:
    def __init__(self):
        self.shutdowns = 0
        self.closed = asyncio.Event()

    async def shutdown(self, *, drain_timeout=25.0):
        self.shutdowns += 1
        self.closed.set()

async def main():
    bot = Bot()

    async def start(_bot):
        print("ready", flush=True)
        await bot.closed.wait()  # like bot.start(): returns once the bot is closed

    stopped_by = await serve(bot, start)
    print(stopped_by, bot.shutdowns, flush=True)

asyncio.run(main())
"""


def test_serve_shuts_down_on_sigterm_and_returns_its_name():
    """The signal goes to a child process running serve(), never to the test runner itself."""
    import signal
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE_IN_A_CHILD.format(root=root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.split() == ["SIGTERM", "1"]  # stopped by that signal, shut down once
