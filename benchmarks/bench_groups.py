"""Group picks (movie night): which aggregation of members' predictions picks what groups enjoy?

On ml-100k and ml-latest-small, each user's latest ratings (the last 20% by timestamp) are held out
and the default family (hybrid) is trained on the rest through ``train_model`` (few epochs; the
exported model is cached under ``/tmp``). Users are split once into a validation half and a test
half. From each half, synthetic groups of 2, 4 and 8: random groups, and groups of similar taste (a
random user and their most cosine-similar users by mean-centred training ratings). For every group
each method picks 3 movies from what no member rated in training; a pick is scored over the members
who DID rate it later (at least one must have: otherwise the pick is not scoreable, and coverage says
how often that happened): the mean and the minimum of their ratings, and whether all of them rated it
>= 3.5. Methods: popularity (Bayesian average), then the aggregations of ``recommender.serving.groups``
with the served confidence prior. The default aggregation and its parameter are chosen on the
validation half and reported on the test half. A last row times a choice for 20 members over 62,000
movies (64-dim synthetic factors, as bench_serving builds them), scoring every member included;
and the same through ``RecommenderService.group_picks`` over a SQLite database (every member's
ratings and hidden movies read and excluded, each member served by their path).
Run with::

    .venv/bin/python -m benchmarks.bench_groups [--epochs 8] [--seeds 5] [--groups 100] [--data DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see bench_serving: one thread serves best here

import numpy as np
import pandas as pd

from recommender.scoring.model import ServingModel
from recommender.serving.groups import (
    DEFAULT_AGGREGATION,
    Aggregation,
    GroupMember,
    GroupScorer,
    MemberKind,
    choose_for_group,
)

ROOT = Path(__file__).resolve().parents[1]
GOOD = 3.5
SIZES = (2, 4, 8)
KINDS = ("random", "similar")
POPULARITY = "popularity"
# (label, aggregation, parameter, with the confidence prior)
METHODS: tuple[tuple[str, Aggregation | None, float | None, bool], ...] = (
    (POPULARITY, None, None, False),
    ("average, no prior", Aggregation.AVERAGE, None, False),
    ("average", Aggregation.AVERAGE, None, True),
    ("least misery", Aggregation.LEAST_MISERY, None, True),
    *((f"without misery {f:g}", Aggregation.WITHOUT_MISERY, f, True) for f in (2.5, 3.0, 3.5, 4.0)),
    *((f"mean - {lam:g} std", Aggregation.MEAN_MINUS_STD, lam, True) for lam in (0.5, 1.0, 2.0)),
    *((f"soft-min t={t:g}", Aggregation.SOFT_MIN, t, True) for t in (0.25, 0.5, 1.0)),
)
MEAN_SLACK = 0.05  # the chosen method may lose at most this much mean rating to the plain average
COVERAGE_SLACK = 0.9  # ... and keep at least this share of the plain average's coverage


KEYS = ("cov1", "mean1", "min1", "good1", "cov3", "mean3", "min3", "good3", "multi3", "minm3")


def default_data_dir() -> Path:
    configured = os.environ.get("MOVIELENS_TEST_DATA")
    return Path(configured) if configured else ROOT.parent / "shared" / "data" / "movielens"


@dataclass
class Tally:
    """Scores of one method in one setting for one seed: top-1 per group, top-3 per pick."""

    groups: int = 0
    top1: list[tuple[float, float, bool]] = field(default_factory=list)  # (mean, min, all >= GOOD)
    top1_all_rated: int = 0  # groups whose top pick every member rated later
    top3: list[tuple[float, float, bool]] = field(default_factory=list)
    top3_groups: int = 0  # groups with at least one scoreable pick among the 3
    top3_multi: list[float] = field(default_factory=list)  # min rating of picks >= 2 members rated

    def summary(self) -> dict[str, float]:
        def stat(rows: list[tuple[float, float, bool]], i: int) -> float:
            return float(np.mean([r[i] for r in rows])) if rows else float("nan")

        return {
            "cov1": len(self.top1) / self.groups,
            "mean1": stat(self.top1, 0),
            "min1": stat(self.top1, 1),
            "good1": stat(self.top1, 2),
            "all1": self.top1_all_rated / self.groups,
            "cov3": self.top3_groups / self.groups,
            "mean3": stat(self.top3, 0),
            "min3": stat(self.top3, 1),
            "good3": stat(self.top3, 2),
            "multi3": len(self.top3_multi) / self.groups,
            "minm3": float(np.mean(self.top3_multi)) if self.top3_multi else float("nan"),
        }


def time_split(ratings: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's last ``holdout`` share of ratings (by timestamp, at least one) is 'later'."""
    r = ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="mergesort").reset_index(drop=True)
    rank = r.groupby("user_id").cumcount()
    size = r.groupby("user_id")["movie_id"].transform("size")
    later = rank >= size - np.maximum(1, np.round(size * holdout)).astype(int)
    return r[~later].reset_index(drop=True), r[later].reset_index(drop=True)


def trained_model(name: str, data, train: pd.DataFrame, epochs: int, cache: Path) -> tuple[ServingModel, str]:  # type: ignore[no-untyped-def]
    """The default family trained on ``train``, from the /tmp cache when the same split was trained."""
    from recommender.families import DEFAULT_FAMILY
    from recommender.families.training import train_model

    digest = hashlib.sha256(pd.util.hash_pandas_object(train, index=False).to_numpy().tobytes()).hexdigest()
    folder = cache / f"{name}-{DEFAULT_FAMILY}-e{epochs}-{digest[:16]}"
    if (folder / "serving.npz").is_file():
        return ServingModel.load(folder), f"cached in {folder}"
    params = {"epochs": epochs}
    started = time.perf_counter()
    result = train_model(train, data.movies, scale=data.scale, family=DEFAULT_FAMILY, params=params, seed=0)
    assert result.serving is not None
    result.serving.save(folder)
    return (
        result.serving,
        f"trained in {time.perf_counter() - started:.0f} s ({DEFAULT_FAMILY}, {epochs} epochs)",
    )


def taste_similarity(train: pd.DataFrame, users: np.ndarray) -> np.ndarray:
    """Cosine similarity of the users' mean-centred training-rating vectors (users x users)."""
    rows = train[train["user_id"].isin(users)]
    pos = {int(u): i for i, u in enumerate(users)}
    movies = {int(m): j for j, m in enumerate(np.unique(rows["movie_id"]))}
    mat = np.zeros((len(users), len(movies)), dtype=np.float64)
    centred = rows["rating"] - rows.groupby("user_id")["rating"].transform("mean")
    mat[rows["user_id"].map(pos).to_numpy(), rows["movie_id"].map(movies).to_numpy()] = centred.to_numpy()
    norms = np.linalg.norm(mat, axis=1)
    unit = mat / np.where(norms > 0, norms, 1.0)[:, None]
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return sim


def draw_groups(
    kind: str, size: int, n: int, users: np.ndarray, sim: np.ndarray, seed: int
) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, size, KINDS.index(kind)])
    if kind == "random":
        return [rng.choice(users, size, replace=False) for _ in range(n)]
    out = []
    for anchor in rng.choice(len(users), n, replace=True):
        nearest = np.argsort(-sim[anchor], kind="stable")[: size - 1]
        out.append(users[np.concatenate([[anchor], nearest])])
    return out


def evaluate_dataset(name: str, args: argparse.Namespace) -> tuple[dict, str]:
    """Per half, kind, size, method and seed: the tally's summary; plus a line describing the run."""
    from recommender.data.movielens import load_movielens
    from recommender.data.popularity import bayesian_popularity

    local = args.data / name
    if not local.is_dir():
        raise SystemExit(f"{name} not found at {local}; pass --data or set MOVIELENS_TEST_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        data = load_movielens(name, cache_dir=Path(tmp), local_path=local, progress=False)
    train, later = time_split(data.ratings, args.holdout)
    model, how = trained_model(name, data, train, args.epochs, args.cache)
    movie_ids = model.movie_ids
    users = np.unique(train["user_id"]).astype(np.int64)
    everyone = [GroupMember(MemberKind.TRAINED, model.user_vector(f"ml:{u}")) for u in users]
    scorer = GroupScorer(model)
    stars = scorer.stars(everyone)  # (users, movies), the serving path
    row = {int(u): i for i, u in enumerate(users)}
    prior = scorer.prior
    pop = bayesian_popularity(train)["score"]
    popular = pop.reindex(movie_ids).fillna(float(train["rating"].mean())).to_numpy()[None, :]
    seen = {int(u): g["movie_id"].to_numpy(np.int64) for u, g in train.groupby("user_id")}
    later_of = {
        int(u): dict(zip(g["movie_id"].astype(int), g["rating"], strict=True))
        for u, g in later.groupby("user_id")
    }

    halves = np.array_split(np.random.default_rng(12345).permutation(users), 2)
    results: dict = {}
    for half_name, half in zip(("validation", "test"), halves, strict=True):
        half = np.sort(half)
        sim = taste_similarity(train, half)
        for kind in KINDS:
            for size in SIZES:
                for seed in range(args.seeds):
                    tallies = {label: Tally() for label, *_ in METHODS}
                    for group in draw_groups(kind, size, args.groups, half, sim, seed):
                        exclude = np.unique(np.concatenate([seen[int(u)] for u in group]))
                        matrix = stars[[row[int(u)] for u in group]]
                        kinds = [MemberKind.TRAINED] * size
                        for label, agg, param, with_prior in METHODS:
                            if agg is None:
                                choice = choose_for_group(
                                    popular, movie_ids, kinds=[MemberKind.CROWD], exclude=exclude, k=3,
                                    aggregation=Aggregation.AVERAGE,
                                )  # fmt: skip
                            else:
                                choice = choose_for_group(
                                    matrix, movie_ids, kinds=kinds, exclude=exclude, k=3, aggregation=agg,
                                    param=param, prior=prior if with_prior else None,
                                )  # fmt: skip
                            score_picks(tallies[label], [p.movie_id for p in choice.picks], group, later_of)
                    for label, tally in tallies.items():
                        results[(half_name, kind, size, label, seed)] = tally.summary()
    line = (
        f"{name}: {len(data.ratings):,} ratings, {len(users)} users ({len(halves[0])} validation / "
        f"{len(halves[1])} test), {len(movie_ids):,} movies in the model; later = each user's last "
        f"{args.holdout:.0%} by timestamp ({len(later):,} ratings); model {how}."
    )
    return results, line


def score_picks(
    tally: Tally, picks: list[int], group: np.ndarray, later_of: dict[int, dict[int, float]]
) -> None:
    tally.groups += 1
    any3 = False
    for rank, movie in enumerate(picks):
        got = [later_of.get(int(u), {}).get(movie) for u in group]
        rated = [float(r) for r in got if r is not None]
        if not rated:
            continue
        entry = (float(np.mean(rated)), float(np.min(rated)), bool(np.min(rated) >= GOOD))
        tally.top3.append(entry)
        if len(rated) >= 2:
            tally.top3_multi.append(entry[1])
        any3 = True
        if rank == 0:
            tally.top1.append(entry)
            tally.top1_all_rated += len(rated) == len(group)
    tally.top3_groups += any3


def by_setting(results: dict) -> dict[tuple, list[dict[str, float]]]:
    """``(dataset, half, kind, size, label) -> [summary per seed]``."""
    out: dict[tuple, list[dict[str, float]]] = {}
    for (d, h, k, s, label, _seed), v in results.items():
        out.setdefault((d, h, k, s, label), []).append(v)
    return out


def pooled(results: dict, half: str, label: str, keys: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Mean over every (dataset, kind, size) of the seed mean, with the mean seed spread (std)."""
    groups = by_setting(results)
    mine = [v for (d, h, k, s, lab), v in sorted(groups.items()) if h == half and lab == label]
    out = {}
    for key in keys:
        means = [np.nanmean([v[key] for v in vals]) for vals in mine]
        spreads = [np.nanstd([v[key] for v in vals]) for vals in mine]
        # a setting where no pick had two raters has no "their min": left out of that column's mean
        out[key] = (float(np.nanmean(means)), float(np.nanmean(spreads)))
    return out


def choose_default(results: dict) -> tuple[str, dict[str, dict[str, tuple[float, float]]]]:
    """Best pooled minimum rating (top-1 and top-3 averaged) on validation, within the mean/coverage slack."""
    table = {label: pooled(results, "validation", label, KEYS) for label, *_ in METHODS}
    base = table["average"]
    base_mean = (base["mean1"][0] + base["mean3"][0]) / 2
    best, best_min = "average", -np.inf
    for label, agg, _param, _prior in METHODS:
        if agg is None:
            continue
        t = table[label]
        mean = (t["mean1"][0] + t["mean3"][0]) / 2
        low = (t["min1"][0] + t["min3"][0]) / 2
        ok = mean >= base_mean - MEAN_SLACK and t["cov3"][0] >= COVERAGE_SLACK * base["cov3"][0]
        if ok and low > best_min:
            best, best_min = label, low
    return best, table


def cell(pair: tuple[float, float], pct: bool = False) -> str:
    m, s = pair
    return f"{100 * m:.0f}% ±{100 * s:.0f}" if pct else f"{m:.3f} ±{s:.3f}"


def print_pooled(title: str, table: dict[str, dict[str, tuple[float, float]]], chosen: str) -> None:
    print(title)
    print()
    cols = [f"top-{n} {c}" for n in (1, 3) for c in ("coverage", "mean", "min", "all >= 3.5")]
    cols += ["top-3 picks rated by >= 2 (per group)", "their min"]
    print("| method | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, t in table.items():
        name = f"**{label}** (chosen)" if label == chosen else label
        print(
            f"| {name} | {cell(t['cov1'], True)} | {cell(t['mean1'])} | {cell(t['min1'])} "
            f"| {cell(t['good1'], True)} | {cell(t['cov3'], True)} | {cell(t['mean3'])} "
            f"| {cell(t['min3'])} | {cell(t['good3'], True)} | {cell(t['multi3'], True)} "
            f"| {cell(t['minm3'])} |"
        )
    print()


def print_settings(results: dict, dataset: str, labels: list[str], groups: int) -> None:
    print(f"Test half, {dataset}, top-1 pick per setting (mean ±std over seeds; {groups} groups per seed):")
    print()
    print("| groups | size | method | coverage | all rated | mean | min | all >= 3.5 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    settings = by_setting(results)
    for kind in KINDS:
        for size in SIZES:
            for label in labels:
                vals = settings[(dataset, "test", kind, size, label)]

                def ms(key: str, vals: list[dict] = vals) -> tuple[float, float]:
                    xs = [v[key] for v in vals]
                    return float(np.nanmean(xs)), float(np.nanstd(xs))

                print(
                    f"| {kind} | {size} | {label} | {cell(ms('cov1'), True)} | {cell(ms('all1'), True)} "
                    f"| {cell(ms('mean1'))} | {cell(ms('min1'))} | {cell(ms('good1'), True)} |"
                )
    print()


def speed(
    requests: int, chosen: tuple[Aggregation, float | None], genre: str | None
) -> tuple[float, float, float, float]:
    """p50 / p99 / max ms to pick for 20 members over 62,000 movies, scoring every member included;
    and the ms to build the scorer (once per model version, when the service loads it)."""
    from benchmarks.bench_serving import synthetic_model, synthetic_movies

    rng = np.random.default_rng(0)
    movies = synthetic_movies(62_000, rng)
    model = synthetic_model(movies, len(movies), 64, 1_000, rng)
    members = [GroupMember(MemberKind.TRAINED, model.user_vector(f"ml:{i}")) for i in range(1, 18)]
    members += [GroupMember(MemberKind.FOLD_IN, (rng.normal(0, 0.3, 64), 0.1)) for _ in range(2)]
    members.append(GroupMember(MemberKind.CROWD))
    crowd = rng.uniform(2.0, 4.5, len(model.movie_ids))
    exclude = {int(m) for m in rng.choice(model.movie_ids, 20 * 50, replace=False)}  # 50 rated each
    # The service would keep one mask per filter; building it is not part of a request.
    allowed = None if genre is None else np.array([genre in m.genres for m in movies])
    started = time.perf_counter()
    scorer = GroupScorer(model)
    build_ms = (time.perf_counter() - started) * 1000
    out = np.empty(requests)
    for i in range(-20, requests):
        started = time.perf_counter()
        scorer.pick(
            members,
            crowd=crowd,
            exclude=exclude,
            allowed=allowed,
            k=3,
            aggregation=chosen[0],
            param=chosen[1],
        )
        if i >= 0:
            out[i] = (time.perf_counter() - started) * 1000
    return float(np.percentile(out, 50)), float(np.percentile(out, 99)), float(out.max()), build_ms


SERVICE_TRAINED, SERVICE_FOLDED = 17, 2  # and one member with no ratings: 20


def service_speed(requests: int, genre: str | None) -> tuple[float, float, float, float]:
    """p50 / p99 / max ms of ``RecommenderService.group_picks`` for 20 members over 62,000 movies,
    end to end (the SQLite reads of every member's fingerprint, ratings and hidden movies included);
    and the ms of the first request, which builds the scorer and the filter's movie mask."""
    import asyncio
    import dataclasses
    import json

    from benchmarks.bench_serving import synthetic_model, synthetic_movies
    from bot.__main__ import open_service
    from recommender.core.config import Settings
    from recommender.core.types import member_key
    from recommender.persistence.registry import Registry
    from recommender.persistence.storage import Storage
    from recommender.serving.contract import PickFilter, ServingPath

    rng = np.random.default_rng(0)
    movies = synthetic_movies(62_000, rng)
    model = synthetic_model(movies, len(movies), 64, 1_000, rng)
    base = 1_000_000_000_000_100
    trained = [base + i for i in range(SERVICE_TRAINED)]
    folded = [base + 100 + i for i in range(SERVICE_FOLDED)]
    members = [*trained, *folded, base + 200]  # the last one has no ratings: the crowd's view
    keys = list(model.user_keys)
    keys[1 : 1 + len(trained)] = [member_key(u) for u in trained]
    model = dataclasses.replace(model, user_keys=keys)
    counts = rng.zipf(1.4, len(movies)).clip(1, 80_000)
    means = rng.uniform(1.5, 4.8, len(movies))
    popularity = {
        m.movie_id: (int(c), float(mu), float((c * mu + 10 * 3.5) / (c + 10)))
        for m, c, mu in zip(movies, counts, means, strict=True)
    }
    with tempfile.TemporaryDirectory(prefix="bench-groups-service-") as tmp:
        settings = Settings(data_dir=Path(tmp), movielens_dataset="ml-25m")
        registry = Registry(settings.models_dir)

        def write(folder: Path) -> None:
            model.save(folder)
            (folder / "metrics.json").write_text(json.dumps(model.metrics))

        registry.store(model.version, write)
        registry.set_current(model.version)

        async def run() -> tuple[float, float, float, float]:
            async with Storage(settings.db_path) as storage:
                await storage.load_catalog("ml-25m", movies, popularity)
                for user in [*trained, *folded]:
                    when = model.trained_at - 60 if user in trained else time.time()
                    picked = rng.choice(model.movie_ids, 50, replace=False)  # 50 rated each
                    rows = [(int(m), float(rng.integers(1, 11)) / 2, when) for m in picked]
                    await storage.import_ratings(user, rows, None)
                    for movie_id in rng.choice(model.movie_ids, 5, replace=False):
                        await storage.hide(user, int(movie_id))
            async with open_service(settings, worker=None) as service:
                wanted = PickFilter(genre) if genre else None
                started = time.perf_counter()
                first = await service.group_picks(members, 3, pick_filter=wanted)
                first_ms = (time.perf_counter() - started) * 1000
                paths = [t.path for t in first.members]
                expected = [ServingPath.TRAINED] * len(trained) + [ServingPath.FOLD_IN] * len(folded)
                if paths != [*expected, ServingPath.POPULARITY] or len(first.picks) != 3:
                    raise SystemExit(f"members were served by unexpected paths: {paths}")
                out = np.empty(requests)
                for i in range(-20, requests):
                    started = time.perf_counter()
                    await service.group_picks(members, 3, pick_filter=wanted)
                    if i >= 0:
                        out[i] = (time.perf_counter() - started) * 1000
            return float(np.percentile(out, 50)), float(np.percentile(out, 99)), float(out.max()), first_ms

        return asyncio.run(run())


def quality(args: argparse.Namespace) -> tuple[str, Aggregation, float | None]:
    """Print the quality tables; return the method chosen on validation."""
    results: dict = {}
    for name in args.datasets:
        found, line = evaluate_dataset(name, args)
        results.update({(name, *k): v for k, v in found.items()})
        print(line)
    print()
    chosen, validation = choose_default(results)
    print_pooled(
        f"Validation half, pooled over {', '.join(args.datasets)} x {{random, similar}} x sizes {SIZES} "
        f"(mean of the settings' seed means, ± mean seed std; {args.seeds} seeds x {args.groups} groups):",
        validation,
        chosen,
    )
    test = {label: pooled(results, "test", label, KEYS) for label, *_ in METHODS}
    print_pooled("Test half, pooled the same way:", test, chosen)
    for name in args.datasets:
        print_settings(results, name, [POPULARITY, "average", "least misery", chosen], args.groups)
    print(f"Chosen on validation: {chosen}.")
    print()
    agg, param = next((a, p) for label, a, p, _ in METHODS if label == chosen)
    assert agg is not None
    return chosen, agg, param


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="folder holding the datasets")
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="share of each user's latest ratings held out"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds of group draws")
    parser.add_argument("--groups", type=int, default=100, help="groups per seed, size, kind and half")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-groups-models")
    parser.add_argument("--requests", type=int, default=1000, help="timed choices for the speed row")
    parser.add_argument("--speed-only", action="store_true", help="only the latency row")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # nan means of settings with no rows
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    started = time.perf_counter()
    chosen_label = "default"
    agg, param = DEFAULT_AGGREGATION
    if not args.speed_only:
        chosen_label, found_agg, found_param = quality(args)
        agg, param = found_agg, found_param
    print(
        f"Latency, load average {os.getloadavg()[0]:.1f} before the run ({args.requests} requests per row):"
    )
    print()
    print("| operation | p50 ms | p99 ms | max ms | target p99 | ok |")
    print("|---|---:|---:|---:|---:|---|")
    build_ms = 0.0
    for label, genre in (("no filter", None), ("comedies only", "Comedy")):
        p50, p99, mx, build_ms = speed(args.requests, (agg, param), genre)
        print(
            f"| {chosen_label}, 20 members (17 trained, 2 fold-in, 1 crowd) x 62,000 movies, 64-dim, "
            f"{label}, scoring included | {p50:.2f} | {p99:.2f} | {mx:.2f} | < 20 ms "
            f"| {'yes' if p99 < 20 else 'NO'} |"
        )
    print(f"| GroupScorer build, once per model version | {build_ms:.1f} | | | | |")
    first_ms = {}
    for label, genre in (("no filter", None), ("comedies only", "Comedy")):
        p50, p99, mx, first_ms[label] = service_speed(args.requests, genre)
        print(
            f"| RecommenderService.group_picks (default), 20 members ({SERVICE_TRAINED} trained, "
            f"{SERVICE_FOLDED} fold-in, 1 no ratings; SQLite reads included) x 62,000 movies, {label} "
            f"| {p50:.2f} | {p99:.2f} | {mx:.2f} | < 20 ms | {'yes' if p99 < 20 else 'NO'} |"
        )
    for label, ms in first_ms.items():
        print(f"| its first request ({label}): builds the scorer and the movie mask | {ms:.1f} | | | | |")
    print()
    print(
        f"Wall time {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end."
    )
    cmd = " ".join(["python -m benchmarks.bench_groups", *(argv if argv is not None else sys.argv[1:])])
    print(f"Reproduce: OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} .venv/bin/{cmd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
