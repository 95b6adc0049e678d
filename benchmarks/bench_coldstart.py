"""Cold-start quality: how well do we serve members the model never saw?

On ml-100k, ~10% of the users are held out of training entirely. For each of them we take their
first 5, 10 and 20 ratings (by timestamp) as what they told the bot, and score the rest of their
ratings (everything after their 20th, the same set for every row so rows are comparable) with:

- popularity: Bayesian-average popular picks (what a member with no usable model gets);
- fold-in: closed-form ridge of the member's first n ratings against the frozen movie factors of a
  model trained without them (``ServingModel.fold_in``, what the service does between retrains);
- retrain: a full retrain that includes every held-out user's first n ratings (the upper bound).

RMSE over the rest of their ratings; NDCG@5 of the top 5 over all movies they had not yet rated,
a movie being relevant when they rated it 4 or more later on (binary gains; users with no such
movie are left out of NDCG). Run with::

    .venv/bin/python -m benchmarks.bench_coldstart [--epochs N] [--seed S] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIRST_N = (5, 10, 20)
MIN_REST = 5  # a held-out user needs at least this many ratings after their 20th to be scored
RELEVANT = 4.0


@dataclass
class Scores:
    sq_err: float = 0.0
    n: int = 0
    ndcg: float = 0.0
    n_ndcg: int = 0

    def add_rmse(self, predicted: np.ndarray, actual: np.ndarray) -> None:
        self.sq_err += float(np.sum((predicted - actual) ** 2))
        self.n += len(actual)

    def add_ndcg(self, ranked: list[int], relevant: set[int], k: int = 5) -> None:
        from recommender.evaluation.metrics import ndcg_at_k  # the definition train.py --evaluate reports

        if not relevant:
            return
        self.ndcg += ndcg_at_k(ranked, relevant, k)
        self.n_ndcg += 1

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.sq_err / self.n)) if self.n else float("nan")

    @property
    def mean_ndcg(self) -> float:
        return self.ndcg / self.n_ndcg if self.n_ndcg else float("nan")


def default_data_dir() -> Path:
    configured = os.environ.get("MOVIELENS_TEST_DATA")
    return Path(configured) if configured else ROOT.parent / "shared" / "data" / "movielens"


def predict_any(
    model, user, movie_ids: np.ndarray, genres: dict[int, tuple], years: dict[int, object]
) -> np.ndarray:
    """Model prediction, or the content model for movies the model has no embedding for."""
    out = np.empty(len(movie_ids), dtype=np.float64)
    known = np.array([model.has_movie(int(m)) for m in movie_ids], dtype=bool)
    if known.any():
        out[known] = model.predict(user, movie_ids[known])
    for i in np.flatnonzero(~known):
        m = int(movie_ids[i])
        year = years.get(m)
        out[i] = model.predict_content(user, genres.get(m, ()), None if pd.isna(year) else int(year))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="folder holding ml-100k/")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the family's)")
    parser.add_argument("--family", default="mf")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of users held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (shared machine)")
    parser.add_argument(
        "--fold-bias-reg", type=float, default=None, help="also show fold-in with this user-bias penalty"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from recommender.data.movielens import load_movielens
    from recommender.data.popularity import bayesian_popularity
    from recommender.families.keras_fit import configure_tensorflow
    from recommender.families.training import train_model

    configure_tensorflow(args.threads)

    local = args.data / "ml-100k"
    if not (local / "u.data").is_file():
        print(f"ml-100k not found at {local}; pass --data or set MOVIELENS_TEST_DATA", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        data = load_movielens("ml-100k", cache_dir=Path(cache), local_path=local, progress=False)
    ratings = data.ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="mergesort")
    scale = data.scale
    params = {"epochs": args.epochs} if args.epochs is not None else {}  # the family's defaults otherwise
    genres = dict(zip(data.movies["movie_id"].astype(int), data.movies["genres"], strict=True))
    years = dict(zip(data.movies["movie_id"].astype(int), data.movies["year"], strict=True))

    rng = np.random.default_rng(args.seed)
    users = ratings["user_id"].unique()
    held = set(rng.choice(users, size=round(len(users) * args.holdout), replace=False).tolist())
    base = ratings[~ratings["user_id"].isin(held)]
    per_user = {u: g for u, g in ratings[ratings["user_id"].isin(held)].groupby("user_id", sort=True)}
    scored = {u: g for u, g in per_user.items() if len(g) >= max(FIRST_N) + MIN_REST}
    rest = {u: g.iloc[max(FIRST_N) :] for u, g in scored.items()}
    relevant = {u: set(r.loc[r["rating"] >= RELEVANT, "movie_id"].astype(int)) for u, r in rest.items()}

    def train(frame: pd.DataFrame):
        started = time.perf_counter()
        result = train_model(
            frame, data.movies, scale=scale, family=args.family, params=params, seed=args.seed
        )
        if result.serving is None:
            raise SystemExit(f"family {args.family} is evaluate-only; use mf or hybrid")
        return result.serving, time.perf_counter() - started

    rows: list[tuple[str, int, Scores, str]] = []
    base_model, base_seconds = train(base)

    pop = bayesian_popularity(base)
    pop_score = pop["score"].to_dict()
    global_mean = float(base["rating"].mean())
    pop_order = [int(m) for m in pop.index]
    for n in FIRST_N:
        s = Scores()
        for u, r in rest.items():
            seen = set(scored[u]["movie_id"].iloc[:n].astype(int))
            predicted = np.array([pop_score.get(int(m), global_mean) for m in r["movie_id"]])
            s.add_rmse(np.clip(predicted, scale.minimum, scale.maximum), r["rating"].to_numpy(np.float64))
            s.add_ndcg([m for m in pop_order if m not in seen][:5], relevant[u])
        rows.append(("popularity", n, s, "-"))

    def fold_rows(label: str) -> None:
        for n in FIRST_N:
            rows.append((label, n, *fold_in_scores(n)))

    def fold_in_scores(n: int) -> tuple[Scores, str]:
        s = Scores()
        fold_times = []
        for u, r in rest.items():
            first = scored[u].iloc[:n]
            known = first[[base_model.has_movie(int(m)) for m in first["movie_id"]]]
            started = time.perf_counter()
            user = base_model.fold_in(known["movie_id"].to_numpy(), known["rating"].to_numpy())
            fold_times.append(time.perf_counter() - started)
            s.add_rmse(
                predict_any(base_model, user, r["movie_id"].to_numpy(), genres, years), r["rating"].to_numpy()
            )
            seen = set(first["movie_id"].astype(int))
            s.add_ndcg([m for m, _ in base_model.recommend(user, 5, exclude=seen)], relevant[u])
        return s, f"{1000 * float(np.median(fold_times)):.2f} ms/user"

    fold_rows("fold-in")
    if args.fold_bias_reg is not None:
        # What-if: a stronger per-rating penalty on the folded-in user's bias (few ratings overfit it).
        trained_bias_reg = base_model.bias_reg
        base_model.bias_reg = args.fold_bias_reg
        fold_rows(f"fold-in, bias_reg {args.fold_bias_reg:g} (was {trained_bias_reg:g})")
        base_model.bias_reg = trained_bias_reg

    for n in FIRST_N:
        extra = pd.concat([g.iloc[:n] for g in per_user.values()])
        model, seconds = train(pd.concat([base, extra], ignore_index=True))
        s = Scores()
        for u, r in rest.items():
            seen = set(scored[u]["movie_id"].iloc[:n].astype(int))
            user = model.user_vector(f"ml:{u}")
            if user is None:
                raise SystemExit(f"retrained model has no vector for held-out user {u}")
            s.add_rmse(
                predict_any(model, user, r["movie_id"].to_numpy(), genres, years), r["rating"].to_numpy()
            )
            s.add_ndcg([m for m, _ in model.recommend(user, 5, exclude=seen)], relevant[u])
        rows.append(("full retrain", n, s, f"{seconds:.1f} s train"))

    n_test = sum(len(r) for r in rest.values())
    print(
        f"Cold start on ml-100k: {len(held)} of {len(users)} users held out of training (seed {args.seed}); "
        f"{len(scored)} with >= {max(FIRST_N) + MIN_REST} ratings scored on their {n_test} ratings after the "
        f"20th. Model {args.family}, epochs {params.get('epochs', 'default')}, base model trained in "
        f"{base_seconds:.1f} s."
    )
    print()
    width = max(len(r[0]) for r in rows)
    print(f"| {'method':<{width}} | first n | {'RMSE':>6} | {'NDCG@5':>6} | {'NDCG users':>10} | note |")
    print(f"|{'-' * (width + 2)}|--------:|-------:|-------:|-----------:|------|")
    for method, n, s, note in rows:
        print(
            f"| {method:<{width}} | {n:>7} | {s.rmse:6.4f} | {s.mean_ndcg:6.4f} | {s.n_ndcg:>10} | {note} |"
        )
    print()
    print(
        "Timings are from a shared 2-core machine and noisy. The split is fixed by the seed; the quality "
        "numbers move a little between runs because TensorFlow training is not bit-reproducible."
    )
    cmd = " ".join(["python -m benchmarks.bench_coldstart", *(argv if argv is not None else sys.argv[1:])])
    print(f"Reproduce: .venv/bin/{cmd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
