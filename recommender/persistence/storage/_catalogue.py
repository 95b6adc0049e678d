"""The catalogue beyond one dataset load: movies added by admins, and switching to another dataset.

Both keep members' data: a rating whose movie leaves the catalogue is moved to
``set_aside_ratings`` (with the dataset, title and year it had), never silently deleted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import recommender.persistence.storage._sql as _sql
from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie, RatingScale
from recommender.persistence.errors import StorageError
from recommender.persistence.storage._backend import Backend, Row, Tx

__all__ = ["ADDED_ID_BASE", "AddedMovie", "CatalogueMixin", "SetAside", "SwitchCounts"]

#: Added movies get ids from here up: above every MovieLens release's ids (ml-32m's end below 300,000),
#: so neither this dataset nor a later one switched to can hold the same id.
ADDED_ID_BASE = 10_000_000
KINDS = ("rating", "hidden", "watchlist")
_SET_ASIDE = (
    "INSERT INTO set_aside_ratings (user_id, kind, dataset, movie_id, title, year, stars, rated_at, "
    "guild_id, reason, set_aside_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ADDED_COLUMNS = (
    "SELECT m.id, m.title, m.year, m.genres, m.imdb_id, m.tmdb_id, a.added_by, a.added_at "
    "FROM movies m JOIN added_movies a ON a.movie_id = m.id"
)


@dataclass(frozen=True, slots=True)
class AddedMovie:
    movie: Movie
    added_by: int
    added_at: float


@dataclass(frozen=True, slots=True)
class SetAside:
    """A member's rating (or hidden / watchlist entry) whose movie left the catalogue."""

    user_id: int
    kind: str  # rating, hidden, watchlist
    dataset: str
    movie_id: int
    title: str
    year: int | None
    stars: float | None
    rated_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class SwitchCounts:
    """What a dataset switch did: per kind, rows moved to the new ids and rows kept aside."""

    movies: int
    moved: dict[str, int]
    set_aside: dict[str, int]
    #: two old movies mapped to one new one: the older rating of the pair was kept aside
    merged: int
    added_kept: int


def on_scale(stars: float, scale: RatingScale) -> float:
    """Stars on another dataset's scale: half stars round up to whole ones, then clipped."""
    steps = math.ceil((float(stars) - scale.minimum) / scale.step - 1e-9)
    return scale.clip(scale.minimum + steps * scale.step)


def _movie(row: Row) -> Movie:
    return _sql.movie_from_row(row[:6])


class CatalogueMixin:
    _backend: Backend

    # -- added movies ------------------------------------------------------------------------
    async def add_movie(self, movie: Movie, added_by: int, added_at: float | None = None) -> Movie:
        """Store an admin's movie under a new id (above every dataset id); returns it with the id."""
        stamp = time.time() if added_at is None else float(added_at)

        async def body(tx: Tx) -> Movie:
            found = await tx.fetch("SELECT value FROM meta WHERE key = 'catalog_dataset'")
            if not found:
                raise StorageError("the catalogue is empty: prepare the dataset before adding movies")
            top = (await tx.fetch("SELECT MAX(id) FROM movies"))[0][0]
            new_id = max(ADDED_ID_BASE, int(top or 0) + 1)
            stored = Movie(new_id, movie.title, movie.year, tuple(movie.genres), movie.imdb_id, None)
            await tx.execute(
                _sql.UPSERT_MOVIE,
                (new_id, stored.title, stored.year, "|".join(stored.genres), "added", stored.imdb_id, None),
            )
            await tx.execute(
                "INSERT INTO added_movies (movie_id, added_by, added_at) VALUES (?, ?, ?)",
                (new_id, int(added_by), stamp),
            )
            return stored

        return await self._backend.run(body)

    async def added_movies(self) -> list[AddedMovie]:
        """Every movie an admin added, oldest first."""
        rows = await self._backend.read(_ADDED_COLUMNS + " ORDER BY m.id")
        return [AddedMovie(_movie(r), int(r[6]), float(r[7])) for r in rows]

    async def edit_added_movie(self, movie: Movie, edited_by: int) -> None:
        """Replace an added movie's title, year, genres and IMDb id; ``UnknownMovie`` for any other."""

        async def body(tx: Tx) -> None:
            if not await tx.fetch("SELECT 1 FROM added_movies WHERE movie_id = ?", (movie.movie_id,)):
                raise UnknownMovie(str(movie.movie_id))
            await tx.execute(
                "UPDATE movies SET title = ?, year = ?, genres = ?, imdb_id = ? WHERE id = ?",
                (movie.title, movie.year, "|".join(movie.genres), movie.imdb_id, movie.movie_id),
            )
            await tx.execute(
                "UPDATE added_movies SET edited_by = ?, edited_at = ? WHERE movie_id = ?",
                (int(edited_by), time.time(), movie.movie_id),
            )

        await self._backend.run(body)

    async def remove_added_movie(self, movie_id: int, removed_by: int) -> dict[str, int]:
        """Take an added movie out of the catalogue; its ratings and list entries are kept aside.
        Returns how many of each kind. ``UnknownMovie`` for a movie that is not an added one."""
        movie_id = int(movie_id)

        async def body(tx: Tx) -> dict[str, int]:
            rows = await tx.fetch(_sql.MOVIE_COLUMNS + " WHERE id = ?", (movie_id,))
            if not rows or not await tx.fetch("SELECT 1 FROM added_movies WHERE movie_id = ?", (movie_id,)):
                raise UnknownMovie(str(movie_id))
            movie = _sql.movie_from_row(rows[0])
            reason = f"removed by admin {int(removed_by)}"
            counts = await _set_aside_movies(tx, {movie_id: movie}, "added", reason)
            await tx.execute("DELETE FROM ratings WHERE movie_id = ?", (movie_id,))
            await tx.execute("DELETE FROM movies WHERE id = ?", (movie_id,))  # cascades lists, flags
            return counts

        return await self._backend.run(body)

    async def set_aside_ratings(self, user_id: int | None = None) -> list[SetAside]:
        """Rows kept aside (one member's, or everyone's), oldest first."""
        sql = (
            "SELECT user_id, kind, dataset, movie_id, title, year, stars, rated_at, reason "
            "FROM set_aside_ratings"
        )
        params: tuple[int, ...] = ()
        if user_id is not None:
            sql, params = sql + " WHERE user_id = ?", (int(user_id),)
        rows = await self._backend.read(sql + " ORDER BY set_aside_at, user_id, movie_id, kind", params)
        return [
            SetAside(
                int(u), k, d, int(m), t, _sql.optional_int(y), None if s is None else float(s), float(r), why
            )
            for u, k, d, m, t, y, s, r, why in rows
        ]

    async def member_movie_uses(self) -> dict[int, dict[str, int]]:
        """movie id -> {"rating": n, "hidden": n, "watchlist": n}: what members keep per movie."""
        uses: dict[int, dict[str, int]] = {}
        for kind, table in zip(KINDS, ("ratings", "hidden", "watchlist"), strict=True):
            for movie_id, n in await self._backend.read(
                f"SELECT movie_id, COUNT(*) FROM {table} GROUP BY movie_id"
            ):
                uses.setdefault(int(movie_id), dict.fromkeys(KINDS, 0))[kind] = int(n)
        return uses

    # -- switching dataset -------------------------------------------------------------------
    async def switch_catalog(
        self,
        dataset: str,
        movies: Iterable[Movie],
        popularity: Mapping[int, tuple[int, float, float]],
        mapping: Mapping[int, int],
        *,
        scale: RatingScale,
        keep_added: Collection[int] = (),
    ) -> SwitchCounts:
        """Replace the catalogue with ``dataset``'s movies in ONE transaction, keeping members' data.

        ``mapping`` (old id -> new id) rewrites every rating, hidden and watchlist entry (two old
        movies on one new one: the newest rating wins, the other is kept aside); ``keep_added``
        names added movies that stay as they are (the new dataset does not hold them); everything
        else is kept aside in ``set_aside_ratings``. Stars move onto ``scale``. Any failure rolls
        the whole switch back.
        """
        rows = [
            (m.movie_id, m.title, m.year, "|".join(m.genres), dataset, m.imdb_id, m.tmdb_id) for m in movies
        ]
        new_ids = {r[0] for r in rows}
        kept = {int(i) for i in keep_added}
        if kept & new_ids:
            raise StorageError(f"added movies {sorted(kept & new_ids)[:5]} collide with {dataset} ids")

        async def body(tx: Tx) -> SwitchCounts:
            found = await tx.fetch("SELECT value FROM meta WHERE key = 'catalog_dataset'")
            old_dataset = found[0][0] if found else "unknown"
            old = {int(r[0]): _sql.movie_from_row(r) for r in await tx.fetch(_sql.MOVIE_COLUMNS)}
            added = {int(r[0]) for r in await tx.fetch("SELECT movie_id FROM added_movies")}
            stay = kept & added
            # an added movie that stays keeps its id: its rows move onto themselves
            moves = {int(o): int(n) for o, n in mapping.items() if int(n) in new_ids and int(o) not in stay}
            moves.update({i: i for i in stay})
            gone = {i: m for i, m in old.items() if i not in moves}
            reason = f"switch from {old_dataset} to {dataset}: no match"
            set_aside = await _set_aside_movies(tx, gone, old_dataset, reason)
            moved, merged = await _move_member_rows(tx, moves, old, old_dataset, dataset, scale)
            # every member row is either kept aside or in `moved` now: clear, replace, write back
            for table in ("ratings", "hidden", "watchlist", "movie_popularity"):
                await tx.execute(f"DELETE FROM {table}")
            await tx.execute("DELETE FROM movies WHERE id NOT IN (SELECT movie_id FROM added_movies)")
            await tx.executemany("DELETE FROM movies WHERE id = ?", [(i,) for i in added - stay])
            await tx.executemany(_sql.UPSERT_MOVIE, rows)
            await tx.executemany(
                "INSERT INTO movie_popularity VALUES (?, ?, ?, ?)",
                [
                    (int(m), int(n), float(mu), float(s))
                    for m, (n, mu, s) in popularity.items()
                    if int(m) in new_ids
                ],
            )
            await _restore_member_rows(tx, moved)
            await tx.execute(_sql.SET_META, ("catalog_dataset", dataset))
            await tx.execute(_sql.SET_META, ("catalog_loaded_at", repr(time.time())))
            await tx.execute(_sql.SET_META, ("catalog_switched_from", old_dataset))
            counts = {kind: len(moved[kind]) for kind in KINDS}
            return SwitchCounts(len(rows), counts, set_aside, merged, len(stay))

        return await self._backend.run(body)


async def _set_aside_movies(tx: Tx, movies: Mapping[int, Movie], dataset: str, reason: str) -> dict[str, int]:
    """Copy every rating, hidden and watchlist entry of ``movies`` into ``set_aside_ratings``."""
    counts = dict.fromkeys(KINDS, 0)
    if not movies:
        return counts
    now = time.time()
    queries = {
        "rating": "SELECT user_id, movie_id, stars, rated_at, guild_id FROM ratings",
        "hidden": "SELECT user_id, movie_id, NULL, hidden_at, NULL FROM hidden",
        "watchlist": "SELECT user_id, movie_id, NULL, added_at, NULL FROM watchlist",
    }
    for kind, sql in queries.items():
        batch = []
        for user, movie_id, stars, at, guild in await tx.fetch(sql):
            movie = movies.get(int(movie_id))
            if movie is not None:
                batch.append(
                    (int(user), kind, dataset, movie.movie_id, movie.title, movie.year,
                     stars, float(at), guild, reason, now)
                )  # fmt: skip
        await tx.executemany(_SET_ASIDE, batch)
        counts[kind] = len(batch)
    return counts


async def _move_member_rows(
    tx: Tx,
    moves: Mapping[int, int],
    old: Mapping[int, Movie],
    old_dataset: str,
    dataset: str,
    scale: RatingScale,
) -> tuple[dict[str, dict[tuple[int, int], tuple]], int]:
    """The member rows of mapped movies under their new ids, newest per (member, movie)."""
    moved: dict[str, dict[tuple[int, int], tuple]] = {kind: {} for kind in KINDS}
    losers: list[tuple] = []
    ratings = await tx.fetch("SELECT user_id, movie_id, stars, guild_id, rated_at FROM ratings")
    for user, movie_id, stars, guild, at in ratings:
        target = moves.get(int(movie_id))
        if target is None:
            continue
        key, row = (int(user), target), (int(user), target, on_scale(stars, scale), guild, float(at))
        before = moved["rating"].get(key)
        if before is not None and before[4] >= row[4]:
            losers.append((int(user), int(movie_id), stars, float(at), guild))
            continue
        if before is not None:
            losers.append((int(user), before[5], before[6], before[4], before[3]))
        moved["rating"][key] = (*row, int(movie_id), stars)
    now = time.time()
    reason = f"switch from {old_dataset} to {dataset}: another rating of the same movie is newer"
    await tx.executemany(
        _SET_ASIDE,
        [
            (u, "rating", old_dataset, m, old[m].title, old[m].year, s, at, g, reason, now)
            for u, m, s, at, g in losers
        ],
    )
    for kind, sql in (
        ("hidden", "SELECT user_id, movie_id, hidden_at FROM hidden"),
        ("watchlist", "SELECT user_id, movie_id, added_at FROM watchlist"),
    ):
        for user, movie_id, at in await tx.fetch(sql):
            target = moves.get(int(movie_id))
            if target is not None:
                key = (int(user), target)
                if key not in moved[kind] or moved[kind][key][2] < float(at):
                    moved[kind][key] = (int(user), target, float(at))
    return moved, len(losers)


async def _restore_member_rows(tx: Tx, moved: Mapping[str, Mapping[tuple[int, int], tuple]]) -> None:
    await tx.executemany(_sql.UPSERT_RATINGS, [r[:5] for r in moved["rating"].values()])
    await tx.executemany(
        "INSERT INTO hidden (user_id, movie_id, hidden_at) VALUES (?, ?, ?)", moved["hidden"].values()
    )
    await tx.executemany(
        "INSERT INTO watchlist (user_id, movie_id, added_at) VALUES (?, ?, ?)", moved["watchlist"].values()
    )
