"""``/import`` behind the service: the catalogue as matching needs it, and the summary the bot words.

Parsing and matching live in :mod:`recommender.data.imports`; this module only connects them to the
serving catalogue (titles through :meth:`Catalog.lookup`, which never runs the "did you mean"
search a command's miss does) and turns the result and the storage counts into an
:class:`~recommender.serving.contract.ImportSummary`.
"""

from __future__ import annotations

import time

from recommender.core.types import RatingScale
from recommender.data.imports import ImportCatalog, ImportRejected, ImportResult, parse_import, unmatched_csv
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.contract import ImportRefused, ImportSummary

__all__ = ["import_catalog", "run_import"]


def import_catalog(catalog: Catalog, scale: RatingScale) -> ImportCatalog:
    """What matching needs from the catalogue: its ids, IMDb ids (links.csv) and a title resolver."""
    movies = catalog.movies
    imdb = {int(m.imdb_id): m.movie_id for m in movies if m.imdb_id is not None}

    def resolve(title: str, year: int | None) -> int | None:
        movie = catalog.lookup(title, year)
        return None if movie is None else movie.movie_id

    return ImportCatalog(scale, frozenset(m.movie_id for m in movies), imdb, resolve)


def parse(data: bytes, catalog: ImportCatalog) -> ImportResult:
    """``parse_import`` with its rejection as the contract's error (CPU-bound: run it in a thread)."""
    try:
        return parse_import(data, catalog)
    except ImportRejected as exc:
        raise ImportRefused(exc.code, exc.detail) from None


async def run_import(
    storage: Storage, result: ImportResult, user_id: int, guild_id: int | None
) -> ImportSummary:
    """Store the matched ratings in one transaction and say what happened."""
    now = time.time()  # an undated row (MovieLens without timestamps) is rated "now"
    rows = [(r.movie_id, r.stars, now if r.rated_at is None else r.rated_at) for r in result.matched]
    counts = await storage.import_ratings(user_id, rows, guild_id)
    total, _newest = await storage.ratings_fingerprint(user_id)
    return ImportSummary(
        format=result.format,
        rows=result.rows,
        matched=len(result.matched),
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        unmatched=len(result.unmatched),
        unmatched_csv=unmatched_csv(result) if result.unmatched else b"",
        rounded=result.rounded,
        skipped_unrated=result.skipped_unrated,
        duplicates=result.duplicates,
        n_ratings=total,
    )
