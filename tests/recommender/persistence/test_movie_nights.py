"""Movie nights in the database, on both backends: one open night per channel, joining up to the
limit, the host handing over, rounds of picks, closing, polls, and the batched group reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from recommender.core.types import Movie
from recommender.persistence.storage import SCHEMA_VERSION, Storage
from recommender.persistence.storage._nights import CLOSED, OPEN, PICKED

MOVIES = [Movie(i, f"Movie {i}", 2000, ("Drama",)) for i in range(1, 31)]
CHANNEL, GUILD = 900_000_000_000_000_001, 800_000_000_000_000_001
HOST, ANN, BEN, CAT = 700_000_000_000_000_001, 700_000_000_000_000_002, 700_000_000_000_000_003, 7_004
NIGHT = 1_300_000_000_000_000_001  # a snowflake, as the bot passes the command's interaction id


@pytest.fixture
async def store(location: Path | str):
    async with Storage(location) as s:
        await s.load_catalog("ml-test", MOVIES)
        yield s


async def open_night(store: Storage, night_id: int = NIGHT, channel: int = CHANNEL, host: int = HOST):
    return await store.open_movie_night(
        night_id,
        channel,
        GUILD,
        host,
        opened_at=1_000.0,
        closes_at=4_600.0,
        genre="Comedy",
        year_from=1990,
        year_to=1999,
    )


async def test_the_schema_has_the_movie_night_tables(store: Storage) -> None:
    assert await store.schema_version() == SCHEMA_VERSION >= 5  # movie nights came with 5


async def test_a_night_opens_with_its_host_in_and_reads_back_whole(store: Storage) -> None:
    night, created = await open_night(store)
    assert created
    assert (night.night_id, night.channel_id, night.guild_id, night.host_id) == (NIGHT, CHANNEL, GUILD, HOST)
    assert (night.genre, night.year_from, night.year_to) == ("Comedy", 1990, 1999)
    assert (night.opened_at, night.closes_at, night.state, night.ended) == (1_000.0, 4_600.0, OPEN, None)
    assert (night.members, night.picks, night.shown, night.round_no, night.message_id) == (
        (HOST,),
        (),
        (),
        0,
        None,
    )
    placed = await store.set_movie_night_message(NIGHT, 555)
    assert placed is not None and placed.message_id == 555
    assert await store.movie_night(NIGHT) == placed
    assert await store.movie_night(12345) is None


async def test_one_open_night_per_channel(store: Storage) -> None:
    first, _ = await open_night(store)
    again, created = await open_night(store, night_id=NIGHT + 1, host=ANN)
    assert not created and again == first  # the open one, nothing written
    assert await store.movie_night(NIGHT + 1) is None
    other, created = await open_night(store, night_id=NIGHT + 2, channel=CHANNEL + 1, host=ANN)
    assert created and other.host_id == ANN
    # once the first has its picks, the channel may open another
    await store.record_movie_night_picks(NIGHT, 1, [3, 4, 5])
    fresh, created = await open_night(store, night_id=NIGHT + 3, host=BEN)
    assert created and (await store.open_movie_night_in(CHANNEL)) == fresh


async def test_a_unique_index_holds_the_rule_even_past_the_read(store: Storage) -> None:
    """Two processes may both read "no open night" before inserting; the database refuses the second."""
    from recommender.persistence.errors import ConstraintViolation

    await open_night(store)

    async def insert(tx):
        await tx.execute(
            "INSERT INTO movie_nights (id, channel_id, host_id, opened_at, closes_at, state) "
            "VALUES (?, ?, ?, 0, 0, 'open')",
            (NIGHT + 9, CHANNEL, BEN),
        )

    with pytest.raises(ConstraintViolation):
        await store._backend.run(insert)


async def test_join_is_idempotent_and_stops_at_the_limit(store: Storage) -> None:
    await open_night(store)
    night, outcome = await store.join_movie_night(NIGHT, ANN, limit=3, joined_at=1_001.0)
    assert outcome == "joined" and night.members == (HOST, ANN)
    night, outcome = await store.join_movie_night(NIGHT, ANN, limit=3, joined_at=1_002.0)
    assert outcome == "already" and night.members == (HOST, ANN)
    night, outcome = await store.join_movie_night(NIGHT, BEN, limit=3, joined_at=1_003.0)
    assert outcome == "joined" and night.members == (HOST, ANN, BEN)
    night, outcome = await store.join_movie_night(NIGHT, CAT, limit=3, joined_at=1_004.0)
    assert outcome == "full" and night.members == (HOST, ANN, BEN)
    assert await store.join_movie_night(424242, CAT, limit=3, joined_at=1.0) == (None, "not_open")


async def test_concurrent_joins_never_pass_the_limit(store: Storage) -> None:
    await open_night(store)
    joins = [store.join_movie_night(NIGHT, 10_000 + i, limit=20, joined_at=1_000.0 + i) for i in range(30)]
    outcomes = [outcome for _night, outcome in await asyncio.gather(*joins)]
    assert outcomes.count("joined") == 19 and outcomes.count("full") == 11
    night = await store.movie_night(NIGHT)
    assert len(night.members) == 20 and night.members[0] == HOST


async def test_leaving_hands_the_host_over_and_the_last_one_out_closes_it(store: Storage) -> None:
    await open_night(store)
    for user in (ANN, BEN):
        await store.join_movie_night(NIGHT, user, limit=20, joined_at=1_001.0)
    night, outcome = await store.leave_movie_night(NIGHT, CAT)
    assert outcome == "not_in" and night.members == (HOST, ANN, BEN)
    night, outcome = await store.leave_movie_night(NIGHT, BEN)  # not the host: host stays
    assert outcome == "left" and (night.host_id, night.members) == (HOST, (HOST, ANN))
    await store.join_movie_night(NIGHT, BEN, limit=20, joined_at=1_002.0)  # back in, now last
    night, outcome = await store.leave_movie_night(NIGHT, HOST)
    assert outcome == "left" and (night.host_id, night.members) == (ANN, (ANN, BEN))  # earliest joined
    night, _ = await store.leave_movie_night(NIGHT, ANN)
    assert (night.host_id, night.state) == (BEN, OPEN)
    night, outcome = await store.leave_movie_night(NIGHT, BEN)
    assert outcome == "left" and (night.state, night.ended, night.members) == (CLOSED, "everyone_left", ())
    assert (await store.join_movie_night(NIGHT, ANN, limit=20, joined_at=2_000.0))[1] == "not_open"
    assert (await store.leave_movie_night(NIGHT, ANN))[1] == "not_open"
    assert await store.open_movie_night_in(CHANNEL) is None  # the channel is free again


async def test_rounds_of_picks_only_move_forward_one_at_a_time(store: Storage) -> None:
    await open_night(store)
    night, stored = await store.record_movie_night_picks(NIGHT, 1, [7, 3, 9])
    assert stored and (night.state, night.round_no) == (PICKED, 1)
    assert (night.picks, night.shown) == ((7, 3, 9), (7, 3, 9))
    # a second pick computed from round 0 (the auto-close racing the host's press) is not stored
    night, stored = await store.record_movie_night_picks(NIGHT, 1, [1, 2, 4])
    assert not stored and night.picks == (7, 3, 9)
    night, stored = await store.record_movie_night_picks(NIGHT, 2, [11, 12])  # a re-roll
    assert stored and (night.round_no, night.picks, night.shown) == (2, (11, 12), (7, 3, 9, 11, 12))
    night, stored = await store.record_movie_night_picks(NIGHT, 3, [])  # nothing left to offer
    assert stored and (night.picks, len(night.shown)) == ((), 5)
    # joining or leaving once picks are shown changes nothing
    assert (await store.join_movie_night(NIGHT, ANN, limit=20, joined_at=1.0))[1] == "not_open"
    assert (await store.leave_movie_night(NIGHT, HOST))[1] == "not_open"
    assert (await store.movie_night(NIGHT)).members == (HOST,)


async def test_a_poll_is_remembered_per_round(store: Storage) -> None:
    await open_night(store)
    assert (await store.mark_movie_night_polled(NIGHT, 1))[1] is False  # no picks yet
    await store.record_movie_night_picks(NIGHT, 1, [7, 3, 9])
    night, marked = await store.mark_movie_night_polled(NIGHT, 1)
    assert marked and night.polled_round == 1
    assert (await store.mark_movie_night_polled(NIGHT, 1))[1] is False  # one poll per round
    await store.record_movie_night_picks(NIGHT, 2, [1, 2, 4])
    assert (await store.mark_movie_night_polled(NIGHT, 1))[1] is False  # an old round
    assert (await store.mark_movie_night_polled(NIGHT, 2))[1] is True


async def test_due_nights_and_ending_one(store: Storage) -> None:
    await open_night(store)  # closes at 4,600
    await store.open_movie_night(NIGHT + 1, CHANNEL + 1, GUILD, ANN, opened_at=0.0, closes_at=3_000.0)
    await store.open_movie_night(NIGHT + 2, CHANNEL + 2, GUILD, BEN, opened_at=0.0, closes_at=9_000.0)
    assert await store.due_movie_nights(2_999.0) == []
    assert await store.due_movie_nights(4_600.0) == [NIGHT + 1, NIGHT]
    night, ended = await store.end_movie_night(NIGHT + 1, "too_few")
    assert ended and (night.state, night.ended) == (CLOSED, "too_few")
    assert (await store.end_movie_night(NIGHT + 1, "too_few"))[1] is False
    await store.record_movie_night_picks(NIGHT, 1, [1, 2, 3])
    assert (await store.end_movie_night(NIGHT, "too_few"))[1] is False  # picked: not ended
    assert await store.due_movie_nights(10_000.0) == [NIGHT + 2]


async def test_a_groups_fingerprints_and_hidden_movies_in_one_read(store: Storage) -> None:
    await store.upsert_rating(ANN, 1, 4.0, None, rated_at=10.0)
    await store.upsert_rating(ANN, 2, 3.0, None, rated_at=20.5)
    await store.upsert_rating(BEN, 5, 5.0, None, rated_at=30.0)
    await store.hide(ANN, 7)
    await store.hide(BEN, 7)
    await store.hide(BEN, 8)
    await store.hide(CAT, 1)  # not asked about
    prints, hidden = await store.group_snapshot([ANN, BEN, HOST, ANN])
    assert prints == {ANN: (2, 20.5), BEN: (1, 30.0), HOST: (0, None)}
    assert prints[ANN] == await store.ratings_fingerprint(ANN)
    assert prints[HOST] == await store.ratings_fingerprint(HOST)
    assert hidden == {7, 8}
    assert await store.group_snapshot([HOST]) == ({HOST: (0, None)}, set())
    assert await store.group_snapshot([]) == ({}, set())
