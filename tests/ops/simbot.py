"""The real bot in its own process, on simcord instead of Discord, driven by JSON lines on stdin.

``python -m tests.ops.simbot [--worker-args "..."] [--first-model]`` runs ``bot.__main__.main`` (the
exact code ``python -m bot`` runs: PREPARE, the real service, signal handlers, draining, closing
storage) with a ``start`` that attaches the bot to simcord instead of logging in to Discord.

stdout carries one JSON object per line: first ``{"event": "ready", "pid", "members": {name: id}}``,
then one ``{"n", "op", "text", "ephemeral", ...}`` per command, written only after the bot's reply
was sent (so a printed /rate reply is a confirmed rating). Commands on stdin, one JSON object each:
``{"op": "slash", "as": "alice", "command": "rate", "options": {...}}``,
``{"op": "click", "as": "alice", "ref": N, "label": "..."}`` (N: the ``n`` of an earlier result),
``{"op": "autocomplete", "as": ..., "command": ..., "option": ..., "value": ...}``, ``{"op": "exit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from typing import Any

import discord
import simcord

import bot.__main__ as cli
from recommender.core.config import Settings

MEMBERS = ("alice", "bob", "dave", "erin", "frank")
ADMIN = "carol"
SETTLE_TIMEOUT = 240.0  # a /retrain waits for a real training process


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(n: int, op: str, result: Any) -> dict[str, Any]:
    """Everything a test may assert on, flattened to text."""
    messages = ([result.response] if result.response is not None else []) + list(result.followups)
    parts: list[str] = []
    attachments: list[str] = []
    for message in messages:
        parts.append(message.content or "")
        for embed in message.embeds:
            parts += [embed.title or "", embed.description or ""]
            parts += [f"{f.name}: {f.value}" for f in embed.fields]
            parts.append(embed.footer.text or "" if embed.footer else "")
        attachments += [a.filename for a in message.attachments]
    return {
        "n": n,
        "op": op,
        "text": "\n".join(p for p in parts if p),
        "ephemeral": bool(messages) and all(m.ephemeral for m in messages),
        "attachments": attachments,
        "buttons": bool(messages and messages[-1].components),
    }


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def drive(bot: Any) -> None:
    """The ``start`` handed to ``bot.__main__.run``: simcord instead of ``bot.start(token)``."""
    async with simcord.run(bot, settle_timeout=SETTLE_TIMEOUT, check_errors=False) as env:
        guild = env.create_guild("Cinema")
        channel = guild.create_text_channel("movies")
        mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        actors = {name: guild.add_member(env.create_user(name)) for name in MEMBERS}
        actors[ADMIN] = guild.add_member(env.create_user(ADMIN), roles=[mods])
        results: dict[int, Any] = {}
        emit({"event": "ready", "pid": os.getpid(), "members": {k: a.id for k, a in actors.items()}})
        reader = await stdin_lines()
        n = 0
        while not bot.is_closed():
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            if cmd["op"] == "exit":
                break
            if bot.is_closed():  # the shutdown finished while this command waited on stdin
                break
            actor = actors[cmd.get("as", "alice")]
            n += 1
            if cmd["op"] == "slash":
                result = await actor.slash(channel, cmd["command"], **cmd.get("options", {}))
            elif cmd["op"] == "click":
                result = await actor.click(results[cmd["ref"]].response, label=cmd["label"])
            elif cmd["op"] == "autocomplete":
                choices = await actor.autocomplete(channel, cmd["command"], cmd["option"], cmd["value"])
                emit({"n": n, "op": "autocomplete", "choices": choices})
                continue
            else:
                raise SystemExit(f"unknown op {cmd['op']!r}")
            results[n] = result
            out = describe(n, cmd.get("command") or cmd["op"], result)
            out["errors"] = [type(e).__name__ for e in env.errors]
            emit(out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ops.simbot")
    parser.add_argument("--worker-args", default="", help="train.py arguments for every retrain")
    parser.add_argument("--first-model", action="store_true", help="train a first model if none")
    args = parser.parse_args()
    from recommender.pipeline.worker import TrainingWorker

    settings = Settings.from_env(dotenv=None)
    worker = TrainingWorker(settings, args=shlex.split(args.worker_args), threads=1, grace=5.0)
    return cli.main([], start=drive, worker=worker, first_model=args.first_model)


if __name__ == "__main__":
    sys.exit(main())
