"""The comparison run behind ``train.py --evaluate``: the model and the baselines on the same splits.

TensorFlow is imported only when a Keras model is actually trained.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from recommender.evaluation.anchors import EASE, ItemKNN
from recommender.evaluation.baselines import Algorithm, GlobalMean, Popularity, SurpriseSVD
from recommender.evaluation.metrics import (
    RELEVANT,
    K,
    catalog_coverage,
    mae,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)
from recommender.evaluation.splits import Split, leave_last_out, ml100k_folds, random_split
from recommender.families.base import FamilyParams
from recommender.families.ranker import RankerParams
from recommender.scoring.linalg import top_k

log = logging.getLogger(__name__)

__all__ = ["BASELINES", "PROTOCOLS", "format_table", "run_evaluation"]

PROTOCOLS = ("ml100k-folds", "random", "leave-last-out")
BASELINES = ("global_mean", "popularity", "surprise_svd", "ease", "item_knn")
METRICS = ("rmse", "mae", "precision@5", "recall@5", "ndcg@5", "coverage", "mean_popularity", "fit_seconds")


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
    for user, rel in relevant.items():
        ranked = algo.rank_scores(int(user))
        if ranked is None:
            if isinstance(algo, GlobalMean):
                return dict.fromkeys(("precision@5", "recall@5", "ndcg@5", "coverage", "mean_popularity"))
            rec: list[int] = []
        else:
            ids, scores = ranked
            blocked = np.fromiter(seen.get(user, set()), dtype=np.int64)
            allowed = np.isin(ids, catalog) & ~np.isin(ids, blocked)
            rec = [int(ids[i]) for i in top_k(np.where(allowed, scores, -np.inf), ids, K)]
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
    raw = algo.predict(split.test["user_id"].to_numpy(), split.test["movie_id"].to_numpy())
    counts = split.train["movie_id"].value_counts().to_dict()
    out: dict[str, float | None] = {"rmse": None, "mae": None}
    if raw is not None:  # the ranking anchors predict no stars
        pred = np.clip(raw, *scale_bounds)
        actual = split.test["rating"].to_numpy(dtype=np.float64)
        out.update({"rmse": rmse(pred, actual), "mae": mae(pred, actual)})
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
    params: FamilyParams | Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    baselines: bool = True,
    on_progress: Callable[[str], None] | None = None,
    ranker: RankerParams | Mapping[str, Any] | None = None,
) -> dict:
    """Train and score the model and the baselines on the same split(s); returns the JSON object.

    ``ranker``: fit the ranking model too, so the model's ranking columns are the served ranking.
    """
    from recommender.families.adapter import KerasRecommender

    splits = _splits(dataset, protocol, seed)
    scale = dataset.scale
    catalog = dataset.movies["movie_id"].to_numpy(dtype=np.int64)
    factories: dict[str, Callable[[], Algorithm]] = {
        "model": lambda: KerasRecommender(family, params, seed, scale, ranker),
    }
    if baselines:
        factories.update(
            {
                "global_mean": GlobalMean,
                "popularity": Popularity,
                "surprise_svd": lambda: SurpriseSVD(seed),
                "ease": EASE,
                "item_knn": ItemKNN,
            }
        )
    per_split: dict[str, list[dict]] = {name: [] for name in factories}
    for split in splits:
        for name, make in factories.items():
            algo = make()
            started = time.perf_counter()
            algo.fit(split.train, dataset.movies)
            seconds = time.perf_counter() - started
            ranker_val, chosen = None, getattr(algo, "chosen", None)  # the anchors' knob
            if name == "model":  # the Keras fits (stars, and ranking if any), without export and tuning
                result = algo.result  # type: ignore[attr-defined]
                ranker = result.metrics.get("ranker", {})
                seconds = result.fit_seconds + float(ranker.get("fit_seconds", 0.0))
                ranker_val = ranker.get("val_ndcg")
                if ranker:  # what the ranking model chose on validation, to read a result by
                    chosen = {k: ranker.get(k) for k in ("best_epoch", "ease_lambda", "blend", "serve_rank")}
                    chosen["star_weights"] = ranker.get("newcomers", {}).get("star_weights")
            scores = _score(algo, seconds, split, catalog, (scale.minimum, scale.maximum))
            if ranker_val is not None:  # what the ranking model was chosen on (its validation slice)
                scores["ranker_val_ndcg"] = float(ranker_val)
            if chosen is not None:  # chosen on validation
                scores["chosen"] = chosen
            per_split[name].append(scores)
            if on_progress is not None:
                on_progress(
                    f"{split.name} {name}: RMSE {_fmt(scores['rmse'])}, NDCG@5 {_fmt(scores['ndcg@5'])}"
                    + (f", ranker validation NDCG@5 {ranker_val:.4f}" if ranker_val is not None else "")
                    + (f", chose {chosen}" if name == "model" and chosen else "")
                )
    results: dict[str, dict] = {}
    for name, rows in per_split.items():
        results[name] = {m: _mean([r[m] for r in rows]) for m in METRICS}
        for extra in ("chosen", "ranker_val_ndcg"):
            if extra in rows[0]:
                results[name][extra] = [r.get(extra) for r in rows]
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
