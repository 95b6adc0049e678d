"""The service's part for movies admins add: add, edit, remove, and the in-memory catalogue swap.

A mixin of :class:`recommender.serving.service.RecommenderService` (kept apart to keep files short):
it uses the service's storage, catalogue, popularity and ``_movie`` lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from recommender.core.errors import NotAddedMovie
from recommender.core.types import Movie
from recommender.serving import added as details
from recommender.serving.catalog import Catalog

if TYPE_CHECKING:
    from recommender.persistence.storage import Storage
    from recommender.serving.caches import FoldCache
    from recommender.serving.paths import Popularity

__all__ = ["AddedMovies"]

log = logging.getLogger(__name__)


class AddedMovies:
    storage: Storage
    catalog: Catalog
    _popularity: Popularity
    _folds: FoldCache
    _added: set[int]
    _genres: list[str]
    _catalogue_lock: asyncio.Lock

    _movie: Callable[[int], Movie]  # the service's catalogue lookup (UnknownMovie)

    def _added_in_catalog(self) -> list[Movie]:
        return [m for i in sorted(self._added) if (m := self.catalog.get(i)) is not None]

    def added_movies(self) -> list[Movie]:
        return self._added_in_catalog()

    async def _rebuild_catalog(self, movie: Movie | None, drop: int | None = None) -> None:
        """A new search index with ``movie`` in (or ``drop`` out), swapped in by one assignment."""
        movies = [m for m in self.catalog.movies if m.movie_id not in (drop, movie and movie.movie_id)]
        counts = {m: p[0] for m, p in self._popularity.table.items()}
        self.catalog = await asyncio.to_thread(Catalog, [*movies, *([movie] if movie else [])], counts)

    async def add_movie(
        self, title: str, year: int, genres: str, imdb_id: str | None = None, *, added_by: int
    ) -> Movie:
        wanted = Movie(
            0,
            details.check_title(title),
            details.check_year(year),
            details.parse_genres(genres, self._genres),
            details.parse_imdb(imdb_id),
        )
        async with self._catalogue_lock:  # two admins adding the same film at once: one wins
            details.check_new(self.catalog.movies, wanted)
            movie = await self.storage.add_movie(wanted, added_by)
            self._added.add(movie.movie_id)
            await self._rebuild_catalog(movie)
        log.info("admin %s added movie %d %r", added_by, movie.movie_id, movie.display)
        return movie

    def _added_movie(self, movie_id: int) -> Movie:
        movie = self._movie(movie_id)
        if movie.movie_id not in self._added:
            raise NotAddedMovie(movie)
        return movie

    async def edit_movie(
        self,
        movie_id: int,
        *,
        title: str | None = None,
        year: int | None = None,
        genres: str | None = None,
        imdb_id: str | None = None,
        edited_by: int,
    ) -> Movie:
        async with self._catalogue_lock:
            old = self._added_movie(movie_id)
            movie = Movie(
                old.movie_id,
                old.title if title is None else details.check_title(title),
                old.year if year is None else details.check_year(year),
                old.genres if genres is None else details.parse_genres(genres, self._genres),
                old.imdb_id if imdb_id is None else details.parse_imdb(imdb_id),
                old.tmdb_id,
            )
            details.check_new(self.catalog.movies, movie, ignore=old.movie_id)
            await self.storage.edit_added_movie(movie, edited_by)
            await self._rebuild_catalog(movie)
        return movie

    async def remove_movie(self, movie_id: int, *, removed_by: int) -> int:
        async with self._catalogue_lock:
            movie = self._added_movie(movie_id)
            counts = await self.storage.remove_added_movie(movie.movie_id, removed_by)
            self._added.discard(movie.movie_id)
            await self._rebuild_catalog(None, drop=movie.movie_id)
        self._folds.clear()
        log.info("admin %s removed added movie %d; %s kept aside", removed_by, movie.movie_id, counts)
        return int(counts.get("rating", 0))
