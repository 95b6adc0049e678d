"""Cold-start quality: how well do we serve members the model never saw?

On ml-100k, ~10% of the users are held out of training entirely. For each of them we take their
first 5, 10 and 20 ratings (by timestamp) as what they told the bot, and score the rest of their
ratings (everything after their 20th, the same set for every row so rows are comparable) with:

- popularity: Bayesian-average popular picks (what a member with no usable model gets);
- fold-in: closed-form ridge of the member's first n ratings against the frozen movie factors of a
  model trained without them, ranked by predicted stars plus the popularity prior (what the
  service served before the ranking model);
- EASE: the anchor, the member's rated-set vector times the item-item matrix (ridge chosen on a
  leave-last-out of the training users);
- served: what ``/recommend`` serves now, the ranking model reading the member's first n ratings in
  order (no fold-in, nothing retrained), plus the share of the fold-in's ranking that the training
  run chose for n ratings on its own newcomers (training users, never these); its stars (RMSE) are
  the fold-in's;
- retrain (``--retrain``): a full retrain that includes every held-out user's first n ratings.

RMSE over the rest of their ratings; NDCG@5 and recall@5 of the top 5 over all movies they had not
yet rated, a movie being relevant when they rated it 4 or more later on (binary gains; users with no
such movie are left out); coverage (share of the catalogue in any top 5) and the mean training
rating count of the recommended movies, so nobody wins by serving the five biggest blockbusters.
~80 users per seed is too few to judge by one draw: every figure is the mean and the spread (std)
over ``--seeds``. Run with::

    .venv/bin/python -m benchmarks.bench_coldstart [--seeds 0 1 2 3 4] [--family hybrid] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
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

    recall: float = 0.0
    shown: list[int] = field(default_factory=list)

    def add_ndcg(self, ranked: list[int], relevant: set[int], k: int = 5) -> None:
        from recommender.evaluation.metrics import ndcg_at_k, recall_at_k  # as train.py --evaluate

        self.shown.extend(ranked[:k])
        if not relevant:
            return
        self.ndcg += ndcg_at_k(ranked, relevant, k)
        self.recall += recall_at_k(ranked, relevant, k)
        self.n_ndcg += 1

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.sq_err / self.n)) if self.n else float("nan")

    @property
    def mean_ndcg(self) -> float:
        return self.ndcg / self.n_ndcg if self.n_ndcg else float("nan")

    def summary(self, n_movies: int, counts: dict[int, int]) -> dict[str, float]:
        return {
            "rmse": self.rmse,
            "ndcg": self.mean_ndcg,
            "recall": self.recall / self.n_ndcg if self.n_ndcg else float("nan"),
            "coverage": len(set(self.shown)) / n_movies,
            "popularity": float(np.mean([counts.get(m, 0) for m in self.shown]))
            if self.shown
            else float("nan"),
        }


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


def run_seed(args: argparse.Namespace, data, seed: int) -> tuple[dict[tuple[str, int], dict], str]:  # type: ignore[no-untyped-def]
    """Every method's metrics at every n for one draw of held-out users."""
    from recommender.data.popularity import bayesian_popularity
    from recommender.evaluation.anchors import EASE
    from recommender.families.training import train_model

    ratings = data.ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="mergesort")
    scale = data.scale
    params = {"epochs": args.epochs} if args.epochs is not None else {}  # the family's defaults otherwise
    genres = dict(zip(data.movies["movie_id"].astype(int), data.movies["genres"], strict=True))
    years = dict(zip(data.movies["movie_id"].astype(int), data.movies["year"], strict=True))

    rng = np.random.default_rng(seed)
    users = ratings["user_id"].unique()
    held = set(rng.choice(users, size=round(len(users) * args.holdout), replace=False).tolist())
    base = ratings[~ratings["user_id"].isin(held)]
    per_user = {u: g for u, g in ratings[ratings["user_id"].isin(held)].groupby("user_id", sort=True)}
    scored = {u: g for u, g in per_user.items() if len(g) >= max(FIRST_N) + MIN_REST}
    rest = {u: g.iloc[max(FIRST_N) :] for u, g in scored.items()}
    relevant = {u: set(r.loc[r["rating"] >= RELEVANT, "movie_id"].astype(int)) for u, r in rest.items()}
    counts = base["movie_id"].value_counts().to_dict()
    n_movies = len(data.movies)
    out: dict[tuple[str, int], dict] = {}

    def train(frame: pd.DataFrame):
        started = time.perf_counter()
        result = train_model(
            frame,
            data.movies,
            scale=scale,
            family=args.family,
            params=params,
            seed=seed,
            ranker={} if args.ranker else None,
        )
        if result.serving is None:
            raise SystemExit(f"family {args.family} is evaluate-only; use mf or hybrid")
        return result.serving, time.perf_counter() - started

    base_model, base_seconds = train(base)
    served_default = base_model.ranker.star_weights if base_model.ranker is not None else ()
    served_rows: dict[str, tuple | None] = {}
    if base_model.ranker is not None:
        served_rows["served: ranking model"] = None  # with its own star weights
        for beta in args.star_weight_grid or ():
            served_rows[f"ranking model, star weight {beta:g}"] = ((10**9, beta),)

    pop = bayesian_popularity(base)
    pop_score = pop["score"].to_dict()
    global_mean = float(base["rating"].mean())
    pop_order = [int(m) for m in pop.index]
    ease = EASE().fit(base, data.movies)
    ease_col = {int(m): i for i, m in enumerate(ease.ids.tolist())}
    for n in FIRST_N:
        s, fold, item = Scores(), Scores(), Scores()
        served = {label: Scores() for label in served_rows}
        for u, r in rest.items():
            first = scored[u].iloc[:n]
            seen = set(first["movie_id"].astype(int))
            truth = r["rating"].to_numpy(np.float64)
            predicted = np.array([pop_score.get(int(m), global_mean) for m in r["movie_id"]])
            s.add_rmse(np.clip(predicted, scale.minimum, scale.maximum), truth)
            s.add_ndcg([m for m in pop_order if m not in seen][:5], relevant[u])

            known = first[[base_model.has_movie(int(m)) for m in first["movie_id"]]]
            user = base_model.fold_in(known["movie_id"].to_numpy(), known["rating"].to_numpy())
            stars = predict_any(base_model, user, r["movie_id"].to_numpy(), genres, years)
            fold.add_rmse(stars, truth)
            ranked = base_model.ranker
            base_model.ranker = None  # the fold-in row is the ranking served before the ranking model
            fold.add_ndcg([m for m, _ in base_model.recommend(user, 5, exclude=seen)], relevant[u])
            base_model.ranker = ranked

            x = np.zeros(len(ease.ids), dtype=np.float32)
            x[[ease_col[m] for m in seen if m in ease_col]] = 1.0
            scores = np.where(np.isin(ease.ids, list(seen)), -np.inf, x @ ease.w)
            item.add_ndcg([int(ease.ids[i]) for i in np.argsort(-scores, kind="stable")[:5]], relevant[u])

            if ranked is not None:
                h = ranked.history(first["movie_id"].astype(int).tolist())
                block = ranked.movie_index(list(seen))
                for label, weights in served_rows.items():
                    ranked.star_weights = weights if weights is not None else served_default
                    scores = base_model.served_scores(h, user)[0]
                    scores[block[block >= 0]] = -np.inf
                    top = [int(ranked.movie_ids[i]) for i in np.argsort(-scores, kind="stable")[:5]]
                    served[label].add_ndcg(top, relevant[u])
                    served[label].add_rmse(stars, truth)
                ranked.star_weights = served_default
        out[("popularity", n)] = s.summary(n_movies, counts)
        out[("fold-in (stars + prior)", n)] = fold.summary(n_movies, counts)
        out[("EASE", n)] = {**item.summary(n_movies, counts), "lambda": ease.chosen}
        for label, scores in served.items():
            out[(label, n)] = scores.summary(n_movies, counts)

    if args.retrain:
        for n in FIRST_N:
            extra = pd.concat([g.iloc[:n] for g in per_user.values()])
            model, _seconds = train(pd.concat([base, extra], ignore_index=True))
            s = Scores()
            for u, r in rest.items():
                seen = set(scored[u]["movie_id"].iloc[:n].astype(int))
                user = model.user_vector(f"ml:{u}")
                if user is None:
                    raise SystemExit(f"retrained model has no vector for held-out user {u}")
                s.add_rmse(
                    predict_any(model, user, r["movie_id"].to_numpy(), genres, years), r["rating"].to_numpy()
                )
                model.ranker = None
                s.add_ndcg([m for m, _ in model.recommend(user, 5, exclude=seen)], relevant[u])
            out[("full retrain (stars + prior)", n)] = s.summary(n_movies, counts)
    note = (
        f"seed {seed}: {len(held)} of {len(users)} users held out, {len(scored)} scored on "
        f"{sum(len(r) for r in rest.values())} later ratings; base model in {base_seconds:.1f} s"
    )
    if base_model.ranker is not None:
        chosen = base_model.ranker.metrics.get("newcomers")
        how = f"chosen on {chosen['newcomers']} newcomers of the training users" if chosen else "fixed"
        note += f"; star weights {list(served_default)} ({how})"
    return out, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="folder holding ml-100k/")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the family's)")
    parser.add_argument(
        "--family", default=None, help="rating model family (default: the one the bot serves)"
    )
    parser.add_argument("--no-ranker", dest="ranker", action="store_false", help="no ranking model")
    parser.add_argument("--retrain", action="store_true", help="also a full retrain per n (slow)")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of users held out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-latest-small"))
    parser.add_argument(
        "--star-weight-grid",
        type=float,
        nargs="*",
        help="also rank with each fixed share of the rating model (to choose the star weights)",
    )
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (shared machine)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from recommender.data.movielens import load_movielens
    from recommender.families import DEFAULT_FAMILY
    from recommender.families.keras_fit import configure_tensorflow

    args.family = args.family or DEFAULT_FAMILY
    configure_tensorflow(args.threads)
    local = args.data / args.dataset
    if not local.is_dir():
        print(f"{args.dataset} not found at {local}; pass --data or set MOVIELENS_TEST_DATA", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        data = load_movielens(args.dataset, cache_dir=Path(cache), local_path=local, progress=False)

    runs = []
    for seed in args.seeds:
        result, note = run_seed(args, data, seed)
        runs.append(result)
        print(note, flush=True)
    print()
    print(
        f"Cold start on {args.dataset}, {args.family}{' + ranking model' if args.ranker else ''}, "
        f"seeds {args.seeds}: mean ± std over seeds"
    )
    print()
    cols = ("ndcg", "recall", "coverage", "popularity", "rmse")
    print(
        "| method | first n | NDCG@5 | recall@5 | coverage | mean pop. (ratings) | RMSE "
        "| NDCG@5 / popularity |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in runs[0]:
        vals = {c: np.array([r[key][c] for r in runs]) for c in cols}
        pop = np.array([r[("popularity", key[1])]["ndcg"] for r in runs])
        ratio = vals["ndcg"] / pop
        cells = [f"{np.mean(vals[c]):.4f} ± {np.std(vals[c]):.4f}" for c in ("ndcg", "recall")]
        cells.append(f"{np.mean(vals['coverage']):.3f}")
        cells.append(f"{np.mean(vals['popularity']):.0f}")
        rmse = vals["rmse"]
        cells.append("-" if np.isnan(rmse).all() else f"{np.nanmean(rmse):.4f}")
        cells.append(f"{np.mean(ratio):.2f}x (min {np.min(ratio):.2f}x)")
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    print()
    print("EASE's lambda per seed (chosen on a leave-last-out of the training users):", end=" ")
    print(", ".join(f"{r[('EASE', FIRST_N[0])]['lambda']:g}" for r in runs))
    print("Per seed NDCG@5:")
    for key in runs[0]:
        print(f"  {key[0]:<32} n={key[1]:<3} " + "  ".join(f"{r[key]['ndcg']:.4f}" for r in runs))
    cmd = " ".join(["python -m benchmarks.bench_coldstart", *(argv if argv is not None else sys.argv[1:])])
    print(f"Reproduce: .venv/bin/{cmd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
