"""Parse and match a 5,000-row Letterboxd ratings.csv (and an IMDb export) against ml-latest-small.

The rows are drawn from the real offline ml-latest-small (popular movies more often, as members rate
them): most with the catalogue's own title and year, some with the year one off (Letterboxd and
MovieLens disagree on some release years), some titles the catalogue lacks, some unrated. Titles
are matched by the real catalogue (``recommender.serving.catalog.Catalog.resolve``), which only
this benchmark may import; the IMDb file is matched by ``Const`` through links.csv. The timed part
is ``parse_import`` alone (decode, CSV, match, duplicates), best of ``--repeat`` runs, each with a
fresh resolver cache; building the catalogue is reported apart.

    .venv/bin/python -m benchmarks.bench_import [--rows 5000] [--repeat 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _letterboxd(movies: list, weights: list[float], rows: int, rng: random.Random) -> bytes:  # type: ignore[type-arg]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Date", "Name", "Year", "Letterboxd URI", "Rating"])
    for i, movie in enumerate(rng.choices(movies, weights=weights, k=rows)):
        title, year = movie.title, movie.year
        roll = rng.random()
        if roll < 0.03:
            title = f"Unreleased Festival Short {i}"  # not in any MovieLens catalogue
        elif roll < 0.05 and year:
            year += 1
        stars = "" if rng.random() < 0.05 else f"{rng.randint(1, 10) / 2:g}"
        day = f"2019-{1 + i % 12:02d}-{1 + i % 28:02d}"
        writer.writerow([day, title, year or "", f"https://boxd.it/{i:x}", stars])
    return out.getvalue().encode("utf-8")


def _imdb(movies: list, rows: int, rng: random.Random) -> bytes:  # type: ignore[type-arg]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Const", "Your Rating", "Date Rated", "Title", "Original Title", "URL", "Year"])
    linked = [m for m in movies if m.imdb_id]
    for movie in rng.choices(linked, k=rows):
        const = f"tt{movie.imdb_id:07d}"
        writer.writerow([const, rng.randint(1, 10), "2020-05-01", movie.title, movie.title, "u", movie.year])
    return out.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, help="folder holding ml-latest-small/ (default: the offline copy)"
    )
    args = parser.parse_args(argv)

    from recommender.core.errors import UnknownMovie
    from recommender.data.imports import ImportCatalog, parse_import
    from recommender.data.movielens import load_movielens, movies_from_frame
    from recommender.data.popularity import bayesian_popularity
    from recommender.serving.catalog import Catalog

    root = args.data or Path(
        os.environ.get("MOVIELENS_TEST_DATA", ROOT.parent / "shared" / "data" / "movielens")
    )
    data = load_movielens("ml-latest-small", cache_dir=Path("/tmp"), local_path=root / "ml-latest-small")
    start = time.perf_counter()
    movies = movies_from_frame(data.movies)
    pop = bayesian_popularity(data.ratings)
    catalog = Catalog(movies, {int(k): float(v) for k, v in pop["score"].items()})
    build = time.perf_counter() - start
    counts = pop["count"].to_dict()

    def resolver(cat: Catalog):  # type: ignore[no-untyped-def]
        def resolve(title: str, year: int | None) -> int | None:
            # "Title (Year)" first; then the title alone, accepted when it is unique and its year is at
            # most one off (Letterboxd and MovieLens list some films a year apart).
            for text in ([f"{title} ({year})"] if year else []) + [title]:
                try:
                    movie = cat.resolve(text)
                except UnknownMovie:
                    continue
                if year is None or movie.year is None or abs(movie.year - year) <= 1:
                    return movie.movie_id
            return None

        return resolve

    resolve = resolver(catalog)

    quiet = Catalog(movies, {int(k): float(v) for k, v in pop["score"].items()})
    quiet.suggest = lambda text, limit=5: []  # type: ignore[method-assign]
    resolve_quiet = resolver(quiet)

    rng = random.Random(0)
    weights = [float(counts.get(m.movie_id, 0)) + 1.0 for m in movies]
    letterboxd = _letterboxd(movies, weights, args.rows, rng)
    files = {
        "Letterboxd, Catalog.resolve": (letterboxd, resolve),
        "Letterboxd, resolve w/o suggestions": (letterboxd, resolve_quiet),
        "IMDb export, Const via links.csv": (_imdb(movies, args.rows, rng), resolve),
    }
    print(f"catalogue: {len(movies):,} movies of ml-latest-small, built in {build:.2f} s (not timed below)")
    row = "| {:<38} | {:>6} | {:>8} | {:>7} | {:>9} | {:>6} | {:>10} |"
    print()
    print(row.format("file", "rows", "KiB", "matched", "unmatched", "unrated", "best s"))
    print("|" + "|".join("-" * (w + 2) for w in (38, 6, 8, 7, 9, 6, 10)) + "|")
    for name, (payload, resolver) in files.items():
        best, result = float("inf"), None
        for _ in range(args.repeat):
            import_catalog = ImportCatalog.from_movies(data.movies, data.scale, resolver)
            start = time.perf_counter()
            result = parse_import(payload, import_catalog)
            best = min(best, time.perf_counter() - start)
        assert result is not None
        cells = (name, f"{result.rows:,}", f"{len(payload) / 1024:,.0f}", f"{len(result.matched):,}")
        print(row.format(*cells, f"{len(result.unmatched):,}", f"{result.skipped_unrated:,}", f"{best:.3f}"))
    load = os.getloadavg()[0]
    print(f"\nmatched = distinct movies (a movie's repeats count as duplicates); load {load:.1f}.")
    print("'w/o suggestions' patches Catalog.suggest away on its own instance: a miss then costs no")
    print("'did you mean' search, which an import does not show.")
    print(
        "Reproduce with:\n  .venv/bin/python -m benchmarks.bench_import"
        + (f" --rows {args.rows}" if args.rows != 5_000 else "")
    )


if __name__ == "__main__":
    main()
