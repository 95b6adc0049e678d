"""Write a synthetic MovieLens folder shaped like ml-32m (ratings, movies, links), streamed in chunks.

The shape, not the content, is what matters for load and training benchmarks: 32,000,204 half-star
ratings by 200,948 users of 87,585 movies (ml-32m's README counts), movie ids sparse up to ~300k as
in the real set, a Zipf-like popularity over movies, a heavy-tailed (log-normal) number of ratings
per user with at least 20 each (as GroupLens guarantees), no repeated (user, movie) pair, rows
sorted by user then movie, timestamps from 1995 to 2023, and stars from a user bias, a movie bias
and noise, so a model has something to learn. ``--ratings N`` makes a smaller set with the users
scaled down in proportion (movies stay at the catalogue's size). Memory stays near one chunk of
rows (~``CHUNK`` of them) plus the per-user and per-movie tables.

    .venv/bin/python -m benchmarks.gen_movielens /tmp/ml32m-synth/ml-32m [--ratings 8000000] [--seed 0]

Never write the output inside the repository: it is about 0.9 GB at full size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ML32M = {"ratings": 32_000_204, "users": 200_948, "movies": 87_585}
MAX_MOVIE_ID = 300_000  # ml-32m's ids run to 292,757 with gaps: the loader must not assume density
MIN_PER_USER = 20
CHUNK = 1_000_000  # rows generated and written at a time
FIRST_STAMP, LAST_STAMP = 789_652_009, 1_697_164_800  # 1995-01-09 .. 2023-10-13
GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip


def _per_user_counts(rng: np.random.Generator, n_users: int, total: int, cap: int) -> np.ndarray:
    """Ratings per user: at least ``MIN_PER_USER``, log-normal above it, capped, summing to ``total``."""
    floor = min(MIN_PER_USER, total // n_users)
    extra = rng.lognormal(mean=0.0, sigma=1.3, size=n_users)
    counts = np.full(n_users, floor, dtype=np.int64)
    remaining = total - counts.sum()
    for _ in range(20):  # scale, cap, hand what the capped users could not take to the others
        room = cap - counts
        weight = np.where(room > 0, extra, 0.0)
        if remaining <= 0 or weight.sum() == 0:
            break
        add = np.minimum(np.floor(weight / weight.sum() * remaining).astype(np.int64), room)
        counts += add
        remaining = total - counts.sum()
        if remaining < n_users:
            break
    while remaining > 0:  # the rounding leftovers, one each to random users with room
        open_users = np.flatnonzero(counts < cap)
        pick = rng.choice(open_users, size=min(int(remaining), len(open_users)), replace=False)
        counts[pick] += 1
        remaining = total - counts.sum()
    return counts


def _stars(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    raw = base + rng.normal(0.0, 0.9, len(base))
    return np.clip(np.round(raw * 2) / 2, 0.5, 5.0)


def _user_block(
    rng: np.random.Generator,
    users: np.ndarray,
    need: np.ndarray,
    popularity: np.ndarray,
    n_movies: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, movie index) pairs, ``need[i]`` of them for ``users[i]``, sorted."""
    have = np.zeros(len(users), dtype=np.int64)
    keys = np.empty(0, dtype=np.int64)
    for _ in range(50):  # each round tops up the users that drew repeats; popular movies repeat most
        short = need - have
        if not short.any():
            break
        who = np.repeat(np.arange(len(users)), short)
        movies = np.searchsorted(popularity, rng.random(len(who)))
        keys = np.sort(np.concatenate([keys, who * n_movies + movies]))
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]  # distinct; np.unique hashes, 10x slower here
        owner = keys // n_movies
        have = np.bincount(owner, minlength=len(users))
        over = have - need
        if (over > 0).any():  # drop random extras of users that now have too many
            priority = rng.random(len(keys))
            order = np.lexsort((priority, owner))
            rank = np.arange(len(keys)) - np.repeat(np.cumsum(have) - have, have)
            keep = np.zeros(len(keys), dtype=bool)
            keep[order[rank < need[owner[order]]]] = True
            keys = keys[keep]
            have = np.minimum(have, need)
    else:
        raise RuntimeError("could not draw distinct movies for every user; lower the per-user cap")
    return users[keys // n_movies], keys % n_movies


def generate(
    folder: Path, n_ratings: int, n_users: int, n_movies: int, seed: int = 0
) -> dict[str, float | int]:
    """Write ``ratings.csv``, ``movies.csv`` and ``links.csv`` into ``folder``; return counts and seconds."""
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), n_movies, replace=False)).astype(np.int64)
    # Zipf-like: the movie of popularity rank r gets weight (r + 10) ** -1.05, ranks shuffled over ids.
    weights = (rng.permutation(n_movies) + 10.0) ** -1.05
    popularity = np.cumsum(weights / weights.sum())
    popularity[-1] = 1.0
    movie_bias = rng.normal(0.0, 0.45, n_movies) + 0.25 * (weights / weights.max()) ** 0.25
    years = np.clip(np.round(2023 - rng.exponential(18.0, n_movies)), 1902, 2023).astype(np.int64)

    cap = max(MIN_PER_USER, min(20_000, n_movies // 3))
    counts = _per_user_counts(rng, n_users, n_ratings, cap)
    user_bias = rng.normal(0.0, 0.4, n_users)
    first = rng.integers(FIRST_STAMP, LAST_STAMP - 86_400, n_users)
    span = np.minimum(rng.exponential(3.0e7, n_users), LAST_STAMP - first)

    written = 0
    with (folder / "ratings.csv").open("w", newline="") as out:
        out.write("userId,movieId,rating,timestamp\r\n")  # GroupLens's CSVs use CRLF
        begin = 0
        bounds = np.cumsum(counts)
        while begin < n_users:
            end = int(np.searchsorted(bounds, (bounds[begin - 1] if begin else 0) + CHUNK, "right"))
            end = max(end, begin + 1)
            idx = np.arange(begin, min(end, n_users))
            user_idx, movie_idx = _user_block(rng, idx, counts[idx], popularity, n_movies)
            base = 3.5 + user_bias[user_idx] + movie_bias[movie_idx]
            stamps = first[user_idx] + (rng.random(len(user_idx)) * span[user_idx]).astype(np.int64)
            frame = pd.DataFrame(
                {
                    "userId": user_idx + 1,
                    "movieId": movie_ids[movie_idx],
                    "rating": _stars(rng, base),
                    "timestamp": stamps,
                }
            )
            frame.to_csv(out, header=False, index=False, lineterminator="\r\n")
            written += len(frame)
            begin = int(idx[-1]) + 1

    genre_count = rng.integers(1, 4, n_movies)
    with (folder / "movies.csv").open("w", encoding="utf-8", newline="") as out:
        out.write("movieId,title,genres\r\n")
        for i, movie_id in enumerate(movie_ids):
            genres = "|".join(sorted(rng.choice(GENRES, genre_count[i], replace=False)))
            title = (
                f'"Synthetic Movie {movie_id}, The ({years[i]})"'
                if i % 7 == 0
                else (f"Synthetic Movie {movie_id} ({years[i]})")
            )
            out.write(f"{movie_id},{title},{genres}\r\n")
    imdb = rng.choice(np.arange(1, 9_999_999), n_movies, replace=False)
    tmdb = rng.choice(np.arange(1, 1_300_000), n_movies, replace=False)
    with (folder / "links.csv").open("w", newline="") as out:
        out.write("movieId,imdbId,tmdbId\r\n")
        for i, movie_id in enumerate(movie_ids):
            tmdb_cell = "" if i % 1000 == 999 else str(tmdb[i])  # a few blanks, as in the real files
            out.write(f"{movie_id},{imdb[i]:07d},{tmdb_cell}\r\n")
    return {
        "ratings": written,
        "users": n_users,
        "movies": n_movies,
        "seconds": time.perf_counter() - start,
        "bytes": (folder / "ratings.csv").stat().st_size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="where to write (e.g. /tmp/ml32m-synth/ml-32m)")
    parser.add_argument("--ratings", type=int, default=ML32M["ratings"], help="default: ml-32m's count")
    parser.add_argument("--users", type=int, help="default: ml-32m's, scaled with --ratings")
    parser.add_argument("--movies", type=int, default=ML32M["movies"], help="default: ml-32m's count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    users = args.users or max(1, round(ML32M["users"] * args.ratings / ML32M["ratings"]))
    if args.ratings < users:
        parser.error("--ratings must be at least the number of users")
    if Path(__file__).resolve().parents[1] in args.folder.resolve().parents:
        parser.error("write generated data outside the repository (e.g. under /tmp)")
    done = generate(args.folder, args.ratings, users, args.movies, args.seed)
    print(
        f"wrote {done['ratings']:,} ratings by {done['users']:,} users of {done['movies']:,} movies "
        f"({done['bytes'] / 2**20:,.0f} MiB ratings.csv) in {done['seconds']:.1f} s to {args.folder}"
    )


if __name__ == "__main__":
    main()
