"""Rate-limit buckets stay bounded over months of members coming and going."""

from __future__ import annotations

from bot.cooldowns import Cooldowns


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_limits_hold_within_the_window_and_reset_after_it() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    assert [cooldowns.hit("rate", 1, 3, 60.0) for _ in range(3)] == [None, None, None]
    wait = cooldowns.hit("rate", 1, 3, 60.0)
    assert wait is not None and 0 < wait <= 60
    assert cooldowns.peek("rate", 1, 3, 60.0) is not None
    clock.now += 61
    assert cooldowns.peek("rate", 1, 3, 60.0) is None
    assert cooldowns.hit("rate", 1, 3, 60.0) is None


def test_buckets_of_members_who_went_quiet_are_dropped() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    for member in range(10_000):  # a busy day: ten thousand members, each once
        cooldowns.hit("*member", member, 30, 60.0)
        clock.now += 0.01
    assert len(cooldowns) <= 6_001  # at most a minute's worth of members (100 per second here)
    clock.now += 61
    cooldowns.hit("*member", 99_999, 30, 60.0)
    assert len(cooldowns) == 1  # everyone else's window has passed: nothing left to remember


def test_a_hard_cap_drops_the_least_recently_used() -> None:
    clock = Clock()
    cooldowns = Cooldowns(max_buckets=100, clock=clock)
    cooldowns.hit("import", 1, 1, 600.0)  # member 1 is over their import limit...
    for member in range(2, 300):
        cooldowns.hit("import", member, 3, 600.0)
    cooldowns.hit("import", 299, 3, 600.0)
    assert len(cooldowns) == 100
    assert cooldowns.peek("import", 1, 1, 600.0) is None  # ...and was the least recently used
