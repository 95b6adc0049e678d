"""Splits, metrics, baselines and the comparison table behind ``train.py --evaluate``.

Metrics are plain functions. Ranking follows one rule everywhere: for each test user, rank every
movie of the catalog the user did not rate in the training split, take the top 5, and count test
ratings >= 4 as relevant. TensorFlow is imported only when a Keras model is actually trained.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recommender.popularity import bayesian_popularity

log = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "PROTOCOLS",
    "Split",
    "catalog_coverage",
    "format_table",
    "leave_last_out",
    "mae",
    "ml100k_folds",
    "ndcg_at_k",
    "precision_at_k",
    "random_split",
    "recall_at_k",
    "rmse",
    "run_evaluation",
]

PROTOCOLS = ("ml100k-folds", "random", "leave-last-out")
BASELINES = ("global_mean", "popularity", "surprise_svd")
K = 5
RELEVANT = 4.0
METRICS = ("rmse", "mae", "precision@5", "recall@5", "ndcg@5", "coverage", "mean_popularity", "fit_seconds")


# --- metrics --------------------------------------------------------------------------------------


def rmse(predicted: Sequence[float], actual: Sequence[float]) -> float:
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean((p - a) ** 2)))


def mae(predicted: Sequence[float], actual: Sequence[float]) -> float:
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(p - a)))


def precision_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Hits in the top ``k`` over ``k`` (a short list still divides by ``k``)."""
    return sum(1 for m in list(recommended)[:k] if m in relevant) / k


def recall_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Hits in the top ``k`` over the number of relevant movies (0 when there are none)."""
    if not relevant:
        return 0.0
    return sum(1 for m in list(recommended)[:k] if m in relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[int], relevant: Collection[int], k: int = K) -> float:
    """Binary-relevance NDCG: ``sum 1/log2(rank+1)`` over hits, divided by the ideal list's value."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, m in enumerate(list(recommended)[:k]) if m in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def catalog_coverage(recommendations: Iterable[Sequence[int]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one user's list."""
    seen: set[int] = set()
    for rec in recommendations:
        seen.update(rec)
    return len(seen) / catalog_size if catalog_size else 0.0


# --- splits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def ml100k_folds(ratings: pd.DataFrame) -> Iterator[Split]:
    """u1..u5 as ``mku.sh`` builds them: fold i tests on lines (i-1)*20000+1 .. i*20000 of u.data.

    ``ratings`` must be u.data in file order (``load_movielens`` keeps it).
    """
    if len(ratings) != 100_000:
        raise ValueError(
            f"ml100k-folds needs the 100,000 ratings of ml-100k in file order, got {len(ratings)}"
        )
    positions = np.arange(len(ratings))
    for i in range(1, 6):
        in_test = (positions >= (i - 1) * 20_000) & (positions < i * 20_000)
        yield Split(f"u{i}", ratings.iloc[~in_test], ratings.iloc[in_test])


def random_split(ratings: pd.DataFrame, *, seed: int, test_fraction: float = 0.1) -> Split:
    """Seeded uniform 90/10 split of the rating rows."""
    rng = np.random.default_rng(seed)
    in_test = np.zeros(len(ratings), dtype=bool)
    in_test[rng.permutation(len(ratings))[: round(len(ratings) * test_fraction)]] = True
    return Split(f"random-{seed}", ratings.iloc[~in_test], ratings.iloc[in_test])


def leave_last_out(ratings: pd.DataFrame, *, n_last: int = 10) -> Split:
    """Each user's ``n_last`` latest ratings are the test set (at most half of a user's ratings).

    Ties in the timestamp keep file order, so the split is deterministic.
    """
    order = ratings.assign(_pos=np.arange(len(ratings))).sort_values(
        ["user_id", "timestamp", "_pos"], kind="mergesort"
    )
    from_end = order.groupby("user_id").cumcount(ascending=False)
    size = order.groupby("user_id")["movie_id"].transform("size")
    in_test = (from_end < n_last) & (from_end < size // 2)
    test_pos = np.sort(order.loc[in_test.to_numpy(), "_pos"].to_numpy())
    mask = np.zeros(len(ratings), dtype=bool)
    mask[test_pos] = True
    return Split(f"leave-last-{n_last}", ratings.iloc[~mask], ratings.iloc[mask])


# --- algorithms -----------------------------------------------------------------------------------


class Algorithm(Protocol):
    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Any: ...
    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray: ...
    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None: ...


class GlobalMean:
    """Predicts the training mean for everything; has no ranking of its own."""

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> GlobalMean:
        self.mean = float(ratings["rating"].mean())
        return self

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.full(len(user_ids), self.mean)

    def rank_scores(self, user_id: int) -> None:
        return None


class Popularity:
    """Bayesian-average popularity (recommender/popularity.py): the cold-start answer."""

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> Popularity:
        table = bayesian_popularity(ratings)
        self.mean = float(ratings["rating"].mean())
        self.ids = table.index.to_numpy(dtype=np.int64)
        # rank by the same order bayesian_popularity returns (score, then count, then id)
        self.scores = -np.arange(len(self.ids), dtype=np.float64)
        self.by_id = dict(
            zip(self.ids.tolist(), table["score"].to_numpy(dtype=np.float64).tolist(), strict=True)
        )
        return self

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.array([self.by_id.get(int(m), self.mean) for m in movie_ids], dtype=np.float64)

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray]:
        return self.ids, self.scores


class SurpriseSVD:
    """Surprise's SVD with its defaults, scored in numpy for the full-catalog ranking."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, ratings: pd.DataFrame, movies: pd.DataFrame) -> SurpriseSVD:
        try:
            from surprise import SVD, Dataset, Reader
        except ImportError as exc:
            raise RuntimeError(
                "The surprise_svd baseline needs scikit-surprise: pip install -e '.[bench]'"
            ) from exc
        lo, hi = float(ratings["rating"].min()), float(ratings["rating"].max())
        data = Dataset.load_from_df(ratings[["user_id", "movie_id", "rating"]], Reader(rating_scale=(lo, hi)))
        self.trainset = data.build_full_trainset()
        self.algo = SVD(random_state=self.seed)
        self.algo.fit(self.trainset)
        self.lo, self.hi = lo, hi
        ts = self.trainset
        self.ids = np.array([int(ts.to_raw_iid(i)) for i in range(ts.n_items)], dtype=np.int64)
        self.item_index = {int(m): i for i, m in enumerate(self.ids.tolist())}
        return self

    def _inner_user(self, user_id: int) -> int | None:
        try:
            return int(self.trainset.to_inner_uid(int(user_id)))
        except ValueError:
            return None

    def predict(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> np.ndarray:
        return np.array(
            [self.algo.predict(int(u), int(m)).est for u, m in zip(user_ids, movie_ids, strict=True)]
        )

    def rank_scores(self, user_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        u = self._inner_user(user_id)
        if u is None:
            return None
        a = self.algo
        return self.ids, self.trainset.global_mean + a.bu[u] + a.bi + a.qi @ a.pu[u]


# --- running --------------------------------------------------------------------------------------


def _ranking(
    algo: Algorithm,
    train: pd.DataFrame,
    test: pd.DataFrame,
    catalog: np.ndarray,
    popularity: Mapping[int, int],
) -> dict[str, float | None]:
    relevant = test[test["rating"] >= RELEVANT].groupby("user_id")["movie_id"].agg(set)
    seen = train.groupby("user_id")["movie_id"].agg(set)
    precisions, recalls, ndcgs, lists = [], [], [], []
    catalog_set = set(catalog.tolist())
    for user, rel in relevant.items():
        ranked = algo.rank_scores(int(user))
        if ranked is None:
            if isinstance(algo, GlobalMean):
                return dict.fromkeys(("precision@5", "recall@5", "ndcg@5", "coverage", "mean_popularity"))
            rec: list[int] = []
        else:
            ids, scores = ranked
            blocked = seen.get(user, set())
            order = np.lexsort((ids, -scores))
            rec = []
            for i in order:
                m = int(ids[i])
                if m not in blocked and m in catalog_set:
                    rec.append(m)
                    if len(rec) == K:
                        break
        precisions.append(precision_at_k(rec, rel))
        recalls.append(recall_at_k(rec, rel))
        ndcgs.append(ndcg_at_k(rec, rel))
        lists.append(rec)
    flat = [m for rec in lists for m in rec]
    return {
        "precision@5": float(np.mean(precisions)) if precisions else None,
        "recall@5": float(np.mean(recalls)) if recalls else None,
        "ndcg@5": float(np.mean(ndcgs)) if ndcgs else None,
        "coverage": catalog_coverage(lists, len(catalog)),
        "mean_popularity": float(np.mean([popularity.get(m, 0) for m in flat])) if flat else None,
    }


def _score(
    algo: Algorithm, seconds: float, split: Split, catalog: np.ndarray, scale_bounds: tuple[float, float]
) -> dict[str, float | None]:
    pred = np.clip(
        algo.predict(split.test["user_id"].to_numpy(), split.test["movie_id"].to_numpy()), *scale_bounds
    )
    actual = split.test["rating"].to_numpy(dtype=np.float64)
    counts = split.train["movie_id"].value_counts().to_dict()
    out: dict[str, float | None] = {"rmse": rmse(pred, actual), "mae": mae(pred, actual)}
    out.update(_ranking(algo, split.train, split.test, catalog, counts))
    out["fit_seconds"] = seconds
    return out


def _splits(dataset: Any, protocol: str, seed: int) -> list[Split]:
    if protocol == "ml100k-folds":
        if dataset.name != "ml-100k":
            raise ValueError(
                f"ml100k-folds is defined on ml-100k only, not {dataset.name}; use random or leave-last-out"
            )
        return list(ml100k_folds(dataset.ratings))
    if protocol == "random":
        return [random_split(dataset.ratings, seed=seed)]
    if protocol == "leave-last-out":
        return [leave_last_out(dataset.ratings)]
    raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def run_evaluation(
    dataset: Any,
    protocol: str,
    family: str = "mf",
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    baselines: bool = True,
    on_progress: Callable[[str], None] | None = None,
) -> dict:
    """Train and score the model and the baselines on the same split(s); returns the JSON object."""
    from recommender.training import KerasRecommender

    splits = _splits(dataset, protocol, seed)
    scale = dataset.scale
    catalog = dataset.movies["movie_id"].to_numpy(dtype=np.int64)
    factories: dict[str, Callable[[], Algorithm]] = {
        "model": lambda: KerasRecommender(family, params, seed, scale),
    }
    if baselines:
        factories.update(
            {"global_mean": GlobalMean, "popularity": Popularity, "surprise_svd": lambda: SurpriseSVD(seed)}
        )
    per_split: dict[str, list[dict]] = {name: [] for name in factories}
    for split in splits:
        for name, make in factories.items():
            algo = make()
            started = time.perf_counter()
            algo.fit(split.train, dataset.movies)
            seconds = time.perf_counter() - started
            if name == "model":  # the Keras fit alone, without export and rank tuning
                seconds = algo.result.fit_seconds  # type: ignore[attr-defined]
            scores = _score(algo, seconds, split, catalog, (scale.minimum, scale.maximum))
            per_split[name].append(scores)
            if on_progress is not None:
                on_progress(
                    f"{split.name} {name}: RMSE {scores['rmse']:.4f}, NDCG@5 {_fmt(scores['ndcg@5'])}"
                )
    results: dict[str, dict] = {}
    for name, rows in per_split.items():
        results[name] = {m: _mean([r[m] for r in rows]) for m in METRICS}
        if len(rows) > 1:
            results[name]["folds"] = rows
    return {
        "dataset": dataset.name,
        "protocol": protocol,
        "seed": seed,
        "family": family,
        "splits": [s.name for s in splits],
        "results": results,
    }


def _mean(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.mean(values))


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(result: dict) -> str:
    """One fixed-width table: the model next to every baseline, each with its fit seconds."""
    columns = ("RMSE", "MAE", "P@5", "R@5", "NDCG@5", "cover", "pop", "fit s")
    header = f"{'name':<22}" + "".join(f"{c:>8}" for c in columns)
    title = (
        f"{result['dataset']} / {result['protocol']} / seed {result['seed']} / model = {result.get('family')}"
    )
    lines = [title, header, "-" * len(header)]
    for name, r in result["results"].items():
        pop = "-" if r.get("mean_popularity") is None else f"{r['mean_popularity']:.0f}"
        lines.append(
            f"{name:<22}{_fmt(r['rmse']):>8}{_fmt(r['mae']):>8}{_fmt(r['precision@5']):>8}{_fmt(r['recall@5']):>8}"
            f"{_fmt(r['ndcg@5']):>8}{_fmt(r['coverage'], 3):>8}{pop:>8}{_fmt(r['fit_seconds'], 1):>8}"
        )
    return "\n".join(lines)
