"""Movie nights (/movienight): who is in, who hosts, which picks were shown; and the one read a group
pick needs (every member's ratings fingerprint and hidden movies together).

The rules that must hold under concurrent presses live here, inside one transaction each: one open
night per channel (a unique index), at most ``limit`` members, the host handing over to the earliest
joined member who is left, and a round of picks recorded only on the round it was computed from.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import recommender.persistence.storage._sql as _sql
from recommender.persistence.errors import ConstraintViolation
from recommender.persistence.storage._backend import Backend, Row, Tx

__all__ = ["CLOSED", "OPEN", "PICKED", "MovieNightsMixin", "StoredNight"]

OPEN, PICKED, CLOSED = "open", "picked", "closed"

_NIGHT_COLUMNS = (
    "SELECT id, channel_id, guild_id, host_id, message_id, opened_at, closes_at, genre, year_from, "
    "year_to, state, ended, round_no, polled_round FROM movie_nights"
)


@dataclass(frozen=True, slots=True)
class StoredNight:
    night_id: int
    channel_id: int
    guild_id: int | None
    host_id: int
    message_id: int | None
    opened_at: float
    closes_at: float
    genre: str | None
    year_from: int | None
    year_to: int | None
    state: str  # OPEN, PICKED or CLOSED
    ended: str | None  # why a night closed without picks
    round_no: int  # rounds of picks so far; a re-roll records the next one
    polled_round: int  # the round a poll was opened for (0: none)
    members: tuple[int, ...]  # earliest joined first
    picks: tuple[int, ...]  # the latest round's movies, best first
    shown: tuple[int, ...]  # every round's movies


async def _load(tx: Tx, night_id: int) -> StoredNight | None:
    rows = await tx.fetch(_NIGHT_COLUMNS + " WHERE id = ?", (int(night_id),))
    if not rows:
        return None
    return await _complete(tx, rows[0])


async def _complete(tx: Tx, row: Row) -> StoredNight:
    night_id, round_no = int(row[0]), int(row[12])
    members = await tx.fetch(
        "SELECT user_id FROM movie_night_members WHERE night_id = ? ORDER BY seq", (night_id,)
    )
    picks = await tx.fetch(
        "SELECT round_no, movie_id FROM movie_night_picks WHERE night_id = ? ORDER BY round_no, rank_no",
        (night_id,),
    )
    return StoredNight(
        night_id,
        int(row[1]),
        _sql.optional_int(row[2]),
        int(row[3]),
        _sql.optional_int(row[4]),
        float(row[5]),
        float(row[6]),
        row[7],
        _sql.optional_int(row[8]),
        _sql.optional_int(row[9]),
        str(row[10]),
        row[11],
        round_no,
        int(row[13]),
        tuple(int(m[0]) for m in members),
        tuple(int(p[1]) for p in picks if int(p[0]) == round_no),
        tuple(int(p[1]) for p in picks),
    )


async def _lock(tx: Tx, night_id: int) -> str | None:
    """The night's state, with its row locked until the transaction ends.

    A no-op UPDATE takes PostgreSQL's row lock (SQLite's BEGIN IMMEDIATE already serialises
    writers), so two presses on one night never both count 19 members and both join.
    """
    rows = await tx.fetch(
        "UPDATE movie_nights SET state = state WHERE id = ? RETURNING state", (int(night_id),)
    )
    return str(rows[0][0]) if rows else None


class MovieNightsMixin:
    _backend: Backend

    async def movie_night(self, night_id: int) -> StoredNight | None:
        async def body(tx: Tx) -> StoredNight | None:
            return await _load(tx, night_id)

        return await self._backend.run(body)

    async def open_movie_night(
        self,
        night_id: int,
        channel_id: int,
        guild_id: int | None,
        host_id: int,
        *,
        opened_at: float,
        closes_at: float,
        genre: str | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> tuple[StoredNight, bool]:
        """Open a night with the host as its first member; or, when the channel has an open night
        already, that one and False (nothing written)."""

        async def body(tx: Tx) -> tuple[StoredNight, bool]:
            found = await tx.fetch(
                _NIGHT_COLUMNS + " WHERE channel_id = ? AND state = 'open'", (int(channel_id),)
            )
            if found:
                return await _complete(tx, found[0]), False
            await tx.execute(
                "INSERT INTO movie_nights (id, channel_id, guild_id, host_id, opened_at, closes_at, genre, "
                "year_from, year_to, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                (
                    int(night_id),
                    int(channel_id),
                    _sql.optional_int(guild_id),
                    int(host_id),
                    float(opened_at),
                    float(closes_at),
                    genre,
                    _sql.optional_int(year_from),
                    _sql.optional_int(year_to),
                ),
            )
            await tx.execute(
                "INSERT INTO movie_night_members (night_id, user_id, seq, joined_at) VALUES (?, ?, 1, ?)",
                (int(night_id), int(host_id), float(opened_at)),
            )
            night = await _load(tx, night_id)
            assert night is not None
            return night, True

        try:
            return await self._backend.run(body)
        except ConstraintViolation:
            # Another process opened one in this channel between our read and our insert.
            night = await self.open_movie_night_in(channel_id)
            if night is None:
                raise
            return night, False

    async def open_movie_night_in(self, channel_id: int) -> StoredNight | None:
        async def body(tx: Tx) -> StoredNight | None:
            found = await tx.fetch(
                _NIGHT_COLUMNS + " WHERE channel_id = ? AND state = 'open'", (int(channel_id),)
            )
            return await _complete(tx, found[0]) if found else None

        return await self._backend.run(body)

    async def set_movie_night_message(self, night_id: int, message_id: int) -> StoredNight | None:
        async def body(tx: Tx) -> StoredNight | None:
            await tx.execute(
                "UPDATE movie_nights SET message_id = ? WHERE id = ?", (int(message_id), int(night_id))
            )
            return await _load(tx, night_id)

        return await self._backend.run(body)

    async def join_movie_night(
        self, night_id: int, user_id: int, *, limit: int, joined_at: float
    ) -> tuple[StoredNight | None, str]:
        """``(night, outcome)``: outcome ``joined``, ``already`` (in before), ``full`` (``limit``
        members in) or ``not_open``; the night is None when there is no such night."""

        async def body(tx: Tx) -> tuple[StoredNight | None, str]:
            state = await _lock(tx, night_id)
            if state is None:
                return None, "not_open"
            night, user = int(night_id), int(user_id)
            if state == OPEN:
                rows = await tx.fetch(
                    "SELECT count(*), max(seq), sum(CASE WHEN user_id = ? THEN 1 ELSE 0 END) "
                    "FROM movie_night_members WHERE night_id = ?",
                    (user, night),
                )
                count, last, mine = int(rows[0][0]), int(rows[0][1] or 0), int(rows[0][2] or 0)
                if mine:
                    outcome = "already"
                elif count >= limit:
                    outcome = "full"
                else:
                    await tx.execute(
                        "INSERT INTO movie_night_members (night_id, user_id, seq, joined_at) "
                        "VALUES (?, ?, ?, ?)",
                        (night, user, last + 1, float(joined_at)),
                    )
                    outcome = "joined"
            else:
                outcome = "not_open"
            return await _load(tx, night), outcome

        return await self._backend.run(body)

    async def leave_movie_night(self, night_id: int, user_id: int) -> tuple[StoredNight | None, str]:
        """``(night, outcome)``: ``left``, ``not_in`` or ``not_open``. A host who leaves hands the
        night to the earliest joined member left; the last member leaving closes it (``ended``
        ``everyone_left``)."""

        async def body(tx: Tx) -> tuple[StoredNight | None, str]:
            state = await _lock(tx, night_id)
            if state is None:
                return None, "not_open"
            night, user = int(night_id), int(user_id)
            if state != OPEN:
                return await _load(tx, night), "not_open"
            gone = await tx.fetch(
                "DELETE FROM movie_night_members WHERE night_id = ? AND user_id = ? RETURNING user_id",
                (night, user),
            )
            if not gone:
                return await _load(tx, night), "not_in"
            left = await tx.fetch(
                "SELECT user_id FROM movie_night_members WHERE night_id = ? ORDER BY seq LIMIT 1", (night,)
            )
            if not left:
                await tx.execute(
                    "UPDATE movie_nights SET state = 'closed', ended = 'everyone_left' WHERE id = ?", (night,)
                )
            else:
                await tx.execute(
                    "UPDATE movie_nights SET host_id = ? WHERE id = ? AND host_id = ?",
                    (int(left[0][0]), night, user),
                )
            return await _load(tx, night), "left"

        return await self._backend.run(body)

    async def record_movie_night_picks(
        self, night_id: int, round_no: int, movie_ids: Sequence[int]
    ) -> tuple[StoredNight | None, bool]:
        """Store round ``round_no`` (the night must be on round ``round_no - 1``, open or picked);
        False when a concurrent pick or close got there first (nothing written)."""

        async def body(tx: Tx) -> tuple[StoredNight | None, bool]:
            night = int(night_id)
            moved = await tx.fetch(
                "UPDATE movie_nights SET state = 'picked', round_no = ? "
                "WHERE id = ? AND round_no = ? AND state IN ('open', 'picked') RETURNING id",
                (int(round_no), night, int(round_no) - 1),
            )
            if moved:
                await tx.executemany(
                    "INSERT INTO movie_night_picks (night_id, round_no, rank_no, movie_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(night, int(round_no), rank, int(m)) for rank, m in enumerate(movie_ids, 1)],
                )
            return await _load(tx, night), bool(moved)

        return await self._backend.run(body)

    async def end_movie_night(self, night_id: int, ended: str) -> tuple[StoredNight | None, bool]:
        """Close an open night without picks; False when it was not open (nothing written)."""

        async def body(tx: Tx) -> tuple[StoredNight | None, bool]:
            moved = await tx.fetch(
                "UPDATE movie_nights SET state = 'closed', ended = ? WHERE id = ? AND state = 'open' "
                "RETURNING id",
                (str(ended), int(night_id)),
            )
            return await _load(tx, night_id), bool(moved)

        return await self._backend.run(body)

    async def mark_movie_night_polled(self, night_id: int, round_no: int) -> tuple[StoredNight | None, bool]:
        """Remember that round ``round_no``'s picks have a poll; False if they had one already or
        the night moved on to another round."""

        async def body(tx: Tx) -> tuple[StoredNight | None, bool]:
            moved = await tx.fetch(
                "UPDATE movie_nights SET polled_round = ? WHERE id = ? AND state = 'picked' "
                "AND round_no = ? AND polled_round < ? RETURNING id",
                (int(round_no), int(night_id), int(round_no), int(round_no)),
            )
            return await _load(tx, night_id), bool(moved)

        return await self._backend.run(body)

    async def due_movie_nights(self, now: float) -> list[int]:
        """Open nights whose closing time has come, soonest first."""
        rows = await self._backend.read(
            "SELECT id FROM movie_nights WHERE state = 'open' AND closes_at <= ? ORDER BY closes_at, id",
            (float(now),),
        )
        return [int(r[0]) for r in rows]

    # -- a whole group in one read ------------------------------------------------------------------
    async def group_snapshot(
        self, user_ids: Collection[int]
    ) -> tuple[dict[int, tuple[int, float | None]], set[int]]:
        """Every member's ratings fingerprint (as ``ratings_fingerprint``; (0, None) without ratings)
        and every movie at least one of them hid, in one statement: a group pick waits for the
        database once, not twice per member."""
        users = sorted({int(u) for u in user_ids})
        if not users:
            return {}, set()
        marks = ", ".join("?" * len(users))
        rows = await self._backend.read(
            f"SELECT 0, user_id, count(*), max(rated_at) FROM ratings WHERE user_id IN ({marks}) "
            "GROUP BY user_id UNION ALL "
            # hidden_at only gives the column the same type on both databases
            f"SELECT 1, movie_id, 0, max(hidden_at) FROM hidden WHERE user_id IN ({marks}) GROUP BY movie_id",
            [*users, *users],
        )
        found = {int(u): (int(n), None if t is None else float(t)) for kind, u, n, t in rows if kind == 0}
        hidden = {int(m) for kind, m, _n, _t in rows if kind == 1}
        return {u: found.get(u, (0, None)) for u in users}, hidden
