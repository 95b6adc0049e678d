"""A member's own lists beside the ratings: hidden movies, the watchlist, /unrate and /import."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import recommender.persistence.storage._sql as _sql
from recommender.core.errors import UnknownMovie
from recommender.persistence.errors import ConstraintViolation
from recommender.persistence.storage._backend import Backend, Tx


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did, one count per distinct movie."""

    inserted: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def _clean_import(rows: Sequence[tuple[int, float, float]]) -> dict[int, tuple[float, float]]:
    """movie -> (stars, rated_at), checked before anything is written; the newest row per movie wins."""
    latest: dict[int, tuple[float, float]] = {}
    for movie_id, stars, rated_at in rows:
        when = float(rated_at)
        if not math.isfinite(when):
            raise ValueError(f"rated_at must be a finite unix time, got {rated_at!r}")
        movie, value = int(movie_id), _sql.check_stars(stars)
        if movie not in latest or when >= latest[movie][1]:
            latest[movie] = (value, when)
    return latest


class MemberListsMixin:
    _backend: Backend

    async def _add(self, table: str, column: str, user_id: int, movie_id: int, at: float | None) -> bool:
        stamp = time.time() if at is None else float(at)
        try:
            rows = await self._backend.write(
                f"INSERT INTO {table} (user_id, movie_id, {column}) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, movie_id) DO NOTHING RETURNING movie_id",
                (int(user_id), int(movie_id), stamp),
            )
        except ConstraintViolation as exc:
            raise UnknownMovie(str(movie_id)) from exc
        return bool(rows)

    async def _remove(self, table: str, user_id: int, movie_id: int) -> bool:
        rows = await self._backend.write(
            f"DELETE FROM {table} WHERE user_id = ? AND movie_id = ? RETURNING movie_id",
            (int(user_id), int(movie_id)),
        )
        return bool(rows)

    async def _list(self, table: str, column: str, user_id: int) -> list[int]:
        rows = await self._backend.read(
            f"SELECT movie_id FROM {table} WHERE user_id = ? ORDER BY {column} DESC, movie_id",
            (int(user_id),),
        )
        return [int(r[0]) for r in rows]

    async def hide(self, user_id: int, movie_id: int, hidden_at: float | None = None) -> bool:
        """Never recommend this movie to this member. True when it was not hidden yet."""
        return await self._add("hidden", "hidden_at", user_id, movie_id, hidden_at)

    async def unhide(self, user_id: int, movie_id: int) -> bool:
        """True when the movie was hidden."""
        return await self._remove("hidden", user_id, movie_id)

    async def hidden(self, user_id: int) -> list[int]:
        """The member's hidden movie ids, most recently hidden first."""
        return await self._list("hidden", "hidden_at", user_id)

    async def add_to_watchlist(self, user_id: int, movie_id: int, added_at: float | None = None) -> bool:
        """True when the movie was not on the watchlist yet."""
        return await self._add("watchlist", "added_at", user_id, movie_id, added_at)

    async def remove_from_watchlist(self, user_id: int, movie_id: int) -> bool:
        """True when the movie was on the watchlist."""
        return await self._remove("watchlist", user_id, movie_id)

    async def watchlist(self, user_id: int) -> list[int]:
        """The member's watchlist, most recently added first."""
        return await self._list("watchlist", "added_at", user_id)

    async def delete_rating(self, user_id: int, movie_id: int) -> bool:
        """Remove one rating (/unrate). True when there was one."""
        return await self._remove("ratings", user_id, movie_id)

    async def import_ratings(
        self, user_id: int, rows: Sequence[tuple[int, float, float]], guild_id: int | None
    ) -> ImportCounts:
        """Store a member's history ``(movie_id, stars, rated_at)`` in one transaction.

        A movie already rated with the same stars is left alone, and so is one rated more recently
        than the imported row (a newer rating in the bot wins); so importing the same file again
        changes nothing. Bad stars or times raise ``ValueError`` and a movie outside the catalog
        ``UnknownMovie``, before anything is written.
        """
        user, guild = int(user_id), _sql.optional_int(guild_id)
        latest = _clean_import(rows)

        async def body(tx: Tx) -> ImportCounts:
            known = {int(r[0]) for r in await tx.fetch("SELECT id FROM movies")}
            unknown = sorted(set(latest) - known)
            if unknown:
                raise UnknownMovie(str(unknown[0]))
            stored = {
                int(m): (float(s), float(t))
                for m, s, t in await tx.fetch(
                    "SELECT movie_id, stars, rated_at FROM ratings WHERE user_id = ?", (user,)
                )
            }
            writes, inserted, updated = [], 0, 0
            for movie, (stars, when) in latest.items():
                before = stored.get(movie)
                if before is not None and (before[0] == stars or before[1] > when):
                    continue
                inserted += before is None
                updated += before is not None
                writes.append((user, movie, stars, guild, when))
            await tx.executemany(_sql.UPSERT_RATINGS, writes)
            return ImportCounts(inserted, updated, len(latest) - inserted - updated)

        return await self._backend.run(body)
