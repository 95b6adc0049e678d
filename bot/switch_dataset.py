"""``python -m bot --switch-dataset NEW [--dry-run | --yes]``: move a running bot to another dataset.

Members' ratings name movies by the old catalogue's ids. The switch maps each old movie to the new
dataset (:mod:`recommender.data.remap`), shows the counts and writes the unmatched movies to a CSV;
with ``--yes`` it takes a backup (SQLite) and replaces the catalogue in one transaction
(:meth:`Storage.switch_catalog`), keeping aside what has no match. No discord here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.core.config import Settings
from recommender.core.types import Movie

if TYPE_CHECKING:
    from recommender.data.movielens import MovieLensData
    from recommender.data.remap import Remap

__all__ = ["catalogue_rows", "switch_dataset", "unmapped_csv_path"]

Say = Callable[[str], None]
Popularity = dict[int, tuple[int, float, float]]
KINDS = ("rating", "hidden", "watchlist")


def catalogue_rows(data: MovieLensData) -> tuple[list[Movie], Popularity]:
    """A dataset's movies and their Bayesian popularity, as the catalogue stores them (blocking)."""
    from recommender.data.popularity import bayesian_popularity
    from recommender.data.readers import movies_from_frame

    pop = bayesian_popularity(data.ratings)
    popularity = {
        int(mid): (int(row["count"]), float(row["mean"]), float(row["score"])) for mid, row in pop.iterrows()
    }
    return movies_from_frame(data.movies), popularity


def unmapped_csv_path(settings: Settings, old: str, new: str) -> Path:
    return settings.data_dir / f"switch-{old}-to-{new}-unmapped.csv"


def _write_unmapped(path: Path, remap: Remap, uses: Mapping[int, Mapping[str, int]], added: set[int]) -> int:
    """The old movies members use that have no match, one row each; returns how many."""
    from recommender.core.atomic import atomic_write
    from recommender.data.csvsafe import csv_bytes

    rows = [
        (m.movie_id, m.title, m.year or "", *(uses[m.movie_id][k] for k in KINDS))
        for m in remap.unmapped
        if m.movie_id in uses and m.movie_id not in added
    ]
    payload = csv_bytes(["old_movie_id", "title", "year", "ratings", "hidden", "watchlist"], rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(payload))
    return len(rows)


def _report(
    say: Say, remap: Remap, uses: Mapping[int, Mapping[str, int]], added: set[int], n_old: int
) -> None:
    rows: dict[str, list[int]] = {k: [0, 0] for k in ("id", "imdb", "title_year", "unmapped")}
    for movie_id, counts in uses.items():
        if movie_id in added:
            continue
        match = remap.matches.get(movie_id)
        kind = match.kind.value if match is not None else "unmapped"
        rows[kind][0] += 1
        rows[kind][1] += counts["rating"]
    labels = {
        "id": "carried by id",
        "imdb": "by IMDb id",
        "title_year": "by title + year",
        "unmapped": "unmapped (kept aside)",
    }
    say(f"Mapping {remap.old_dataset} -> {remap.new_dataset}, for the movies members rated, hid or listed:")
    for kind, label in labels.items():
        movies, ratings = rows[kind]
        say(f"  {label + ':':<24}{movies:>7,} movies {ratings:>9,} ratings")
    found = sum(1 for i in added if i in remap.matches)
    if added:
        say(
            f"  added by admins:        {found:>7,} found in {remap.new_dataset}, "
            f"{len(added) - found:,} stay added"
        )
    whole = {k: v for k, v in remap.counts.items() if k != "unmapped"}
    say(
        f"Whole catalogue: {sum(whole.values()):,} of {n_old:,} movies matched "
        f"(id {whole['id']:,}, IMDb {whole['imdb']:,}, title + year {whole['title_year']:,})."
    )
    agree, sampled = remap.sample
    if sampled and not remap.ids_trusted:
        say(
            f"Movie ids were NOT carried over: only {agree} of {sampled} sampled shared ids "
            "name the same film."
        )


async def switch_dataset(settings: Settings, new: str, *, dry_run: bool, yes: bool, say: Say) -> int:
    """The CLI's switch: 0 done (or a dry run shown), 1 refused or nothing to do."""
    from recommender.data.movielens import load_from_settings
    from recommender.data.remap import build_remap
    from recommender.persistence.backup import backup_now
    from recommender.persistence.storage import Storage

    async with Storage(settings.storage_location, backup_dir=settings.backup_dir) as storage:
        current = await storage.catalog_dataset()
        if current is None:
            say(f"There is no catalogue to switch yet: set MOVIELENS_DATASET={new} and run `make run`.")
            return 1
        if current == new:
            say(f"The catalogue already holds {new}; nothing to switch.")
            return 1
        say(f"Loading the {new} dataset…")
        target = dataclasses.replace(settings, movielens_dataset=new)
        data = await asyncio.to_thread(load_from_settings, target, progress=True)
        movies, popularity = await asyncio.to_thread(catalogue_rows, data)
        old_movies = await storage.all_movies()
        added = {a.movie.movie_id for a in await storage.added_movies()}
        uses = await storage.member_movie_uses()
        remap = await asyncio.to_thread(build_remap, old_movies, movies, old_dataset=current, new_dataset=new)
        _report(say, remap, uses, added, len(old_movies))
        csv_path = unmapped_csv_path(settings, current, new)
        n_unmapped = await asyncio.to_thread(_write_unmapped, csv_path, remap, uses, added)
        say(f"The {n_unmapped:,} unmapped movies members use are listed in {csv_path}.")
        if dry_run:
            say("Dry run: nothing was changed.")
            return 0
        if not yes:
            say(
                f"To switch, stop the bot and run `python -m bot --switch-dataset {new} --yes` "
                "(a backup is taken first)."
            )
            return 1
        if storage.dialect == "sqlite":
            backup = await asyncio.to_thread(backup_now, settings.db_path, settings.backup_dir)
            say(f"Backed up the database to {backup}.")
        else:
            say(
                "The database is on PostgreSQL, which the bot does not back up: --yes confirms you took a "
                "pg_dump of it first (pg_dump -Fc -f before-switch.dump DATABASE_URL)."
            )
        counts = await storage.switch_catalog(
            new,
            movies,
            popularity,
            remap.mapping(),
            scale=data.scale,
            keep_added=added - set(remap.matches),
        )
    moved = ", ".join(f"{counts.moved[k]:,} {k}" for k in KINDS)
    aside = ", ".join(f"{counts.set_aside[k]:,} {k}" for k in KINDS)
    say(f"Switched the catalogue to {new}: {counts.movies:,} movies; moved {moved}.")
    say(
        f"Kept aside (not deleted, in the set_aside_ratings table): {aside}; "
        f"{counts.merged:,} older duplicates."
    )
    say(
        f"Now set MOVIELENS_DATASET={new} in .env. A model trained on {current} is not "
        f"served for the new catalogue: the bot serves popular picks until a model trained on {new} is "
        "published. `make run` trains one before starting (or run `python train.py`, or /retrain)."
    )
    return 0
