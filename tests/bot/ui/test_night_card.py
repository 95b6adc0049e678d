"""The movie-night card's words: every refusal code and ending is worded, the crowd's-view notes,
a relaxed floor, and a card of twenty members within Discord's embed limits."""

from __future__ import annotations

import pytest

from bot.ui import night_card
from recommender.core.types import Movie
from recommender.serving.contract import (
    MAX_GROUP,
    GroupMovie,
    GroupPicks,
    GroupReason,
    GroupTaste,
    MovieNight,
    MovieNightEnd,
    MovieNightState,
    NightProblem,
    PickFilter,
    PopularityReason,
    ServingPath,
)

BIG = 1_456_074_443_980_800_023  # a realistic snowflake: the longest mentions


def night(state=MovieNightState.OPEN, members=(BIG, BIG + 1), end=None, **changes) -> MovieNight:  # type: ignore[no-untyped-def]
    fields = dict(
        night_id=1,
        channel_id=2,
        guild_id=3,
        host_id=members[0] if members else BIG,
        message_id=4,
        opened_at=0.0,
        closes_at=3600.0,
        filters=PickFilter(),
        state=state,
        members=tuple(members),
        picks=(),
        shown=(),
        round_no=0,
        polled=False,
        end=end,
    )
    fields.update(changes)
    return MovieNight(**fields)  # type: ignore[arg-type]


def picks(tastes, reasons=(GroupReason.FLOOR_KEPT,), floor=3.0, n=3) -> GroupPicks:  # type: ignore[no-untyped-def]
    movies = [Movie(i, "A Very Long Title That Goes On " * 3, 1999) for i in range(n)]
    return GroupPicks(
        tuple(GroupMovie(m, 4.0, tuple(4.25 for _ in tastes)) for m in movies),
        tuple(tastes),
        tuple(reasons),
        floor,
        "v1",
    )


@pytest.mark.parametrize("code", list(NightProblem))
def test_every_refusal_is_worded(code: NightProblem) -> None:
    text = night_card.night_refused(code, night())
    assert text.endswith((".", ")"))
    if code in (NightProblem.ALREADY_OPEN, NightProblem.NOT_HOST):
        assert f"<@{BIG}>" in text  # the host, by name
    assert night_card.night_refused(code, None)  # no night to name (UNKNOWN)


def test_already_open_links_to_the_open_card() -> None:
    text = night_card.night_refused(NightProblem.ALREADY_OPEN, night())
    assert "https://discord.com/channels/3/2/4" in text
    unposted = night_card.night_refused(NightProblem.ALREADY_OPEN, night(message_id=None))
    assert "https://" not in unposted and f"hosted by <@{BIG}>." in unposted


@pytest.mark.parametrize("end", list(MovieNightEnd))
def test_every_ending_is_worded_and_has_no_buttons_to_offer(end: MovieNightEnd) -> None:
    embed = night_card.night_embed(night(MovieNightState.CLOSED, members=(BIG,), end=end))
    assert embed.description and "/movienight" in embed.description


def test_crowd_notes_name_the_members_and_say_why() -> None:
    tastes = [
        GroupTaste(BIG, ServingPath.TRAINED, 12),
        GroupTaste(BIG + 1, ServingPath.POPULARITY, 0, PopularityReason.NO_RATINGS),
        GroupTaste(BIG + 2, ServingPath.POPULARITY, 3, PopularityReason.UNKNOWN_MOVIES),
    ]
    text = night_card.night_embed(night(MovieNightState.PICKED), picks(tastes)).description
    assert f"No ratings yet, so counted with the crowd's view: <@{BIG + 1}>." in text
    assert f"counted with the crowd's view: <@{BIG + 2}>." in text and "doesn't know yet" in text
    nobody = [GroupTaste(u, ServingPath.POPULARITY, 1, PopularityReason.NO_MODEL) for u in (BIG, BIG + 1)]
    text = night_card.night_embed(night(MovieNightState.PICKED), picks(nobody)).description
    assert "everyone is counted with the crowd's view" in text


def test_a_relaxed_floor_is_said_plainly() -> None:
    tastes = [GroupTaste(BIG, ServingPath.TRAINED, 3), GroupTaste(BIG + 1, ServingPath.FOLD_IN, 4)]
    relaxed = picks(tastes, reasons=(GroupReason.FLOOR_RELAXED,), floor=2.5)
    text = night_card.night_embed(night(MovieNightState.PICKED), relaxed).description
    assert "nobody is predicted under 2.5★" in text
    kept = night_card.night_embed(night(MovieNightState.PICKED), picks(tastes)).description
    assert "predicted under" not in kept


def test_a_full_card_of_twenty_fits_discords_limits() -> None:
    members = [BIG + i for i in range(MAX_GROUP)]
    tastes = [GroupTaste(u, ServingPath.POPULARITY, 0, PopularityReason.NO_RATINGS) for u in members]
    full = night(MovieNightState.PICKED, members=members, filters=PickFilter("Documentary", 1990, 1999))
    embed = night_card.night_embed(full, picks(tastes), notice=night_card.rerolled())
    assert len(embed) <= 6000 and len(embed.description) <= 4096
    assert all(len(f.value) <= 1024 and f.value.count("<@") == MAX_GROUP for f in embed.fields)
    open_card = night_card.night_embed(night(members=members))
    assert open_card.fields[0].value.count("<@") == MAX_GROUP and len(open_card) <= 6000


def test_a_picked_card_needs_its_picks() -> None:
    with pytest.raises(ValueError):
        night_card.night_embed(night(MovieNightState.PICKED))


def test_poll_answers_fit_discords_55_characters() -> None:
    long = Movie(1, "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb", 1964)
    poll = night_card.poll_of([long, Movie(2, "Heat", 1995)])
    answers = [a.text for a in poll.answers]
    assert len(answers[0]) == 55 and answers[0].endswith("…") and answers[1] == "Heat (1995)"
    assert poll.question == night_card.POLL_QUESTION


def test_private_answers() -> None:
    before = night(members=(BIG, BIG + 1))
    handed = night(members=(BIG + 1,), host_id=BIG + 1)
    assert night_card.left(BIG, before, handed, True) == f"You're out. <@{BIG + 1}> is the host now."
    assert night_card.left(BIG + 1, before, night(members=(BIG,)), True) == "You're out."
    gone = night(MovieNightState.CLOSED, members=(), end=MovieNightEnd.EVERYONE_LEFT)
    assert "cancelled" in night_card.left(BIG, night(members=(BIG,)), gone, True)
    assert "weren't in" in night_card.left(BIG + 5, before, before, False)
    assert night_card.joined(before) == "You're in! 2 members so far."
