"""Soak: the real bot for N minutes at 20 interactions/s from 200 members, with three retrains.

The bot is ``bot.client.MovieBot`` in discord.py under simcord (in memory, no network), over the
real ``RecommenderService`` on SQLite with the offline ml-latest-small catalogue and a model trained
first (not measured). 200 members in one server send a mix of ``/rate``, ``/recommend``,
``/predict``, ``/similar``, ``/ratings``, title autocomplete and the Watchlist button under a
``/recommend`` answer, one after another at the target rate, keeping within the bot's per-member
limits (``GUILD_COMMANDS_PER_MINUTE`` is raised: 200 members at 20/s are one busy server, not
abuse). Three scheduled retrains run through ``bot.retrainer`` (the background loop's path: the
real ``train.py`` in its child process, results posted to an admin channel) at 1/4, 1/2 and 3/4.

Reported: per command count, failures, p50/p99 latency; the process's RSS at the start of the load,
after its first minute (caches warm), at the end and at its peak; the database size at start and end
next to the rows written. A failure is an exception, no reply, the bot's apology, or a telemetry
outcome other than ok. simcord's own record of every message and request is cleared every 30 s so
that the RSS is the bot's (a real Discord keeps those on its side).

    .venv/bin/python -m benchmarks.bench_soak [--minutes 20] [--rate 20] [--members 200] [--retrains 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_event_loop import QUERIES, data_root, pct

MIX = (("rate", 30), ("autocomplete", 20), ("predict", 15), ("recommend", 12), ("similar", 10))
MIX += (("ratings", 8), ("watch", 5))
PURGE_SECONDS = 30.0
#: The bot's own per-member limits (bot/cooldowns.LIMITS, USER_COMMANDS_PER_MINUTE): kept by the driver.
MEMBER_LIMITS = {"rate": (10, 60.0), "recommend": (3, 30.0), "*": (25, 60.0)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wal(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _checkpoint(db: Path) -> int:
    """Fold the WAL into the file (as SQLite does on its own from time to time); the file's size."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return db.stat().st_size


def _table_sizes(db: Path) -> dict[str, int]:
    """Bytes of the largest tables and indexes (SQLite's dbstat), after a checkpoint."""
    _checkpoint(db)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6")
        return dict(rows.fetchall())
    except sqlite3.OperationalError:  # built without dbstat
        return {}
    finally:
        conn.close()


class Member:
    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.uses: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.last_recommend: tuple[int, Any] | None = None  # (purge epoch, message)

    def allowed(self, kind: str, now: float) -> bool:
        for key in (kind, "*"):
            if key not in MEMBER_LIMITS:
                continue
            rate, per = MEMBER_LIMITS[key]
            seen = self.uses[key]
            while seen and seen[0] <= now - per:
                seen.popleft()
            if len(seen) >= rate:
                return False
        return True

    def use(self, kind: str, now: float) -> None:
        for key in (kind, "*"):
            if key in MEMBER_LIMITS:
                self.uses[key].append(now)


def _watch_buttons(message: Any) -> list[str]:
    """The Watchlist buttons' custom ids under a /recommend answer (simcord gives components as dicts)."""
    found = []
    for row in getattr(message, "components", []) or []:
        items = row.get("components", []) if isinstance(row, dict) else getattr(row, "children", [])
        for item in items:
            custom_id = item.get("custom_id") if isinstance(item, dict) else getattr(item, "custom_id", None)
            if (custom_id or "").startswith("rec:watch:"):
                found.append(custom_id)
    return found


class Driver:
    def __init__(
        self, env: Any, channel: Any, members: list[Member], movie_ids: list[int], seed: int
    ) -> None:
        self.env, self.channel, self.members, self.movie_ids = env, channel, members, movie_ids
        self.rng = random.Random(seed)
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []
        self.epoch = 0
        self.rows_rated: set[tuple[int, int]] = set()
        self.watched: set[tuple[int, int]] = set()

    def pick(self, now: float) -> tuple[Member, str]:
        kinds, weights = zip(*MIX, strict=True)
        for _ in range(50):
            member = self.rng.choice(self.members)
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "watch" and (member.last_recommend is None or member.last_recommend[0] != self.epoch):
                kind = "recommend"
            if member.allowed(kind, now):
                return member, kind
        return member, "autocomplete"  # autocomplete counts against no limit

    async def one(self, now: float) -> None:
        member, kind = self.pick(now)
        if kind != "autocomplete":
            member.use(kind, now)
        actor, channel, movie = member.actor, self.channel, self.rng.choice(self.movie_ids)
        errors_before = len(self.env.errors)
        began = time.perf_counter()
        try:
            if kind == "autocomplete":
                choices = await actor.autocomplete(channel, "rate", "movie", self.rng.choice(QUERIES))
                ok, text = bool(choices), ""
            else:
                if kind == "rate":
                    stars = self.rng.choice([2.0, 3.0, 3.5, 4.0, 4.5, 5.0])
                    result = await actor.slash(channel, "rate", movie=f"id:{movie}", stars=stars)
                    self.rows_rated.add((actor.id, movie))
                elif kind in ("predict", "similar"):
                    result = await actor.slash(channel, kind, movie=f"id:{movie}")
                elif kind == "watch":
                    assert member.last_recommend is not None
                    message = member.last_recommend[1]
                    buttons = _watch_buttons(message)
                    member.last_recommend = None
                    if not buttons:
                        raise AssertionError("no Watchlist button under the /recommend answer")
                    custom_id = self.rng.choice(buttons)
                    result = await actor.click(message, custom_id=custom_id)
                    self.watched.add((actor.id, int(custom_id.rsplit(":", 1)[1])))
                else:
                    result = await actor.slash(channel, kind)
                messages = ([result.response] if result.response is not None else []) + list(result.followups)
                text = " ".join(
                    (m.content or "") + " ".join(e.description or "" for e in m.embeds) for m in messages
                )
                ok = bool(messages)
                if kind == "recommend" and result.response is not None:
                    member.last_recommend = (self.epoch, result.response)
        except Exception as exc:  # a failed interaction, counted and shown
            ok, text = False, f"{type(exc).__name__}: {exc}"
        self.latencies[kind].append((time.perf_counter() - began) * 1000)
        from bot.errors import GENERIC_APOLOGY

        if not ok or GENERIC_APOLOGY in text or len(self.env.errors) > errors_before:
            self.failures[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {text[:200] or 'no reply'}")

    def purge(self, keep_channel: int | None = None) -> None:
        """Forget simcord's record of past messages and requests (Discord's side, not the bot's);
        the admin channel's few messages are kept, to be counted at the end."""
        backend = self.env.backend
        for channel_id, channel_messages in backend.messages.items():
            if channel_id != keep_channel:
                channel_messages.clear()
        for name in ("interactions", "interaction_tokens"):
            getattr(backend, name).clear()
        for name in ("http_requests", "transcript"):
            getattr(backend, name).clear()
        self.epoch += 1


async def soak(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    import simcord

    from bot.__main__ import open_service, prepare_catalog
    from bot.client import create_bot
    from recommender.core.config import Settings
    from recommender.pipeline.worker import TrainingWorker

    settings = Settings(
        data_dir=data_dir,
        movielens_dataset="ml-latest-small",
        movielens_path=data_root() / "ml-latest-small",
        log_level="WARNING",
        guild_commands_per_minute=100_000,
        retrain_interval_hours=1000.0,  # the three retrains are started by the soak itself
    )
    await prepare_catalog(settings)
    worker = TrainingWorker(settings, args=list(args.train_args))
    async with open_service(settings, worker=worker) as service:
        warm = await service.retrain(trigger="schedule")  # a serving model first, not measured
        if not warm.published:
            sys.exit(f"the warm-up training did not publish a model: {warm.reason}")
        movie_ids = [m.movie_id for m in service.catalog.movies[:2000]]
        bot = create_bot(settings, service)
        async with simcord.run(bot, check_errors=False, settle_timeout=600) as env:
            guild = env.create_guild("Soak")
            channel = guild.create_text_channel("movies")
            admins = guild.create_text_channel("bot-admin")
            bot.settings = settings = dataclasses.replace(settings, admin_channel_id=admins.id)
            members = [Member(guild.add_member(env.create_user(f"member{i}"))) for i in range(args.members)]
            driver = Driver(env, channel, members, movie_ids, args.seed)
            db = settings.db_path
            start_rows = _count_rows(db)
            start_db = _checkpoint(db)
            loop = asyncio.get_running_loop()
            duration = args.minutes * 60
            retrain_at = [duration * (i + 1) / (args.retrains + 1) for i in range(args.retrains)]
            retrains: list[asyncio.Task[Any]] = []
            rss = {"start": rss_mb()}
            series: list[float] = []  # every 5 minutes
            peak = rss["start"]
            began = loop.time()
            i, last_purge, last_sample, last_print = 0, began, began, began
            while (now := loop.time()) - began < duration:
                if retrain_at and now - began >= retrain_at[0]:
                    retrain_at.pop(0)
                    retrains.append(loop.create_task(bot.retrainer.run(trigger="schedule")))
                await driver.one(time.monotonic())
                i += 1
                if now - last_purge >= PURGE_SECONDS:
                    driver.purge(keep_channel=admins.id)
                    last_purge = now
                if now - last_sample >= 5.0:
                    peak, last_sample = max(peak, rss_mb()), now
                    if "after_1min" not in rss and now - began >= 60:
                        rss["after_1min"] = rss_mb()
                    if now - began >= 300 * (len(series) + 1):
                        series.append(rss_mb())
                if now - last_print >= 60:
                    done = sum(len(v) for v in driver.latencies.values())
                    failed, minute = sum(driver.failures.values()), (now - began) / 60
                    print(f"[{minute:4.1f} min] {done} interactions, {failed} failed, RSS {rss_mb():.0f} MB")
                    last_print = now
                delay = began + i / args.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elapsed = loop.time() - began
            results = await asyncio.gather(*retrains, return_exceptions=True)
            rss["end"] = rss_mb()
            peak = max(peak, rss["end"])
            outcomes = dict(bot.interaction_stats.outcomes)
            admin_posts = len(admins.history())
        end_db, end_wal = db.stat().st_size, _wal(db)
        end_rows = _count_rows(db)
        tables = _table_sizes(db)
        return {
            "elapsed": elapsed,
            "driver": driver,
            "rss": rss,
            "rss_series": series,
            "peak": peak,
            "db": (start_db, end_db, end_wal, db.stat().st_size),
            "tables": tables,
            "rows": (start_rows, end_rows),
            "retrains": results,
            "outcomes": outcomes,
            "admin_posts": admin_posts,
            "cooldown_buckets": len(bot.cooldowns),
        }


def _count_rows(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = ("ratings", "watchlist", "retrain_runs", "model_versions")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def report(args: argparse.Namespace, out: dict[str, Any], load_before: tuple[float, ...]) -> int:
    driver: Driver = out["driver"]
    total = sum(len(v) for v in driver.latencies.values())
    failed = sum(driver.failures.values())
    minutes = out["elapsed"] / 60
    print(
        f"\nSoak: {minutes:.1f} min, {total:,} interactions ({total / out['elapsed']:.1f}/s) "
        f"from {args.members} members, {args.retrains} retrains"
    )
    header = f"{'command':<14}{'count':>8}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for kind, _ in MIX:
        values = driver.latencies.get(kind, [])
        if values:
            p50, p99 = pct(values, 0.5), pct(values, 0.99)
            print(
                f"{kind:<14}{len(values):>8,}{driver.failures[kind]:>8}{p50:>9.1f}{p99:>9.1f}{max(values):>9.1f}"
            )
    print(f"{'all':<14}{total:>8,}{failed:>8}")
    rss = out["rss"]
    warm = rss.get("after_1min", rss["start"])
    growth = rss["end"] - warm
    print(
        f"\nRSS: start {rss['start']:.0f} MB, after 1 min {warm:.0f} MB, end {rss['end']:.0f} MB, "
        f"peak {out['peak']:.0f} MB; growth after the first minute {growth:+.1f} MB (target < 50 MB)"
    )
    if out["rss_series"]:
        print("RSS every 5 minutes: " + ", ".join(f"{v:.0f}" for v in out["rss_series"]) + " MB")
    (db0, db1, wal1, db_final), (rows0, rows1) = out["db"], out["rows"]
    added = {t: rows1[t] - rows0[t] for t in rows0}
    rated, watched = len(driver.rows_rated), len(driver.watched)
    print(
        f"database: {db0 / 1e6:.2f} MB at start; at the end {db1 / 1e6:.2f} MB + {wal1 / 1e6:.2f} MB WAL, "
        f"{db_final / 1e6:.2f} MB once checkpointed (+{(db_final - db0) / 1e3:.0f} kB)"
    )
    print(
        f"  rows added {added}; the driver rated {rated:,} distinct (member, movie) pairs "
        f"and watch-listed {watched:,}"
    )
    for name, size in out["tables"].items():
        print(f"  {name}: {size / 1e3:.0f} kB")
    print(f"bot telemetry outcomes: {out['outcomes']}")
    print(f"rate-limit buckets held at the end: {out['cooldown_buckets']} (for {args.members} members)")
    for n, result in enumerate(out["retrains"], 1):
        if isinstance(result, BaseException):
            print(f"retrain {n}: raised {type(result).__name__}: {result}")
        else:
            seconds = result.seconds or 0
            print(f"retrain {n}: published={result.published} ({seconds:.0f} s): {result.reason}")
    print(f"results posted to the admin channel: {out['admin_posts']}")
    for example in driver.examples:
        print(f"failed: {example}")
    after = tuple(round(x, 2) for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) before {load_before}, after {after}; {os.cpu_count()} cores")
    print(
        f"\nreproduce: .venv/bin/python -m benchmarks.bench_soak --minutes {args.minutes:g} "
        f"--rate {args.rate:g} --members {args.members} --retrains {args.retrains}"
    )
    ok = failed == 0 and growth < 50 and added["ratings"] == rated and added["watchlist"] == watched
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="duration of the load (default 20)")
    parser.add_argument("--rate", type=float, default=20.0, help="interactions per second (default 20)")
    parser.add_argument("--members", type=int, default=200, help="simulated members (default 200)")
    parser.add_argument("--retrains", type=int, default=3, help="scheduled retrains spread over the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-args", nargs="*", default=[], help="extra train.py arguments")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot.interactions").setLevel(logging.WARNING)
    load_before = tuple(round(x, 2) for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        out = asyncio.run(soak(args, Path(tmp)))
    return report(args, out, load_before)


if __name__ == "__main__":
    sys.exit(main())
