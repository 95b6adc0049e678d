"""Model quality against real baselines on the offline MovieLens copies.

Sections (all by default):
  folds     ml-100k u1..u5 (mku.sh blocks), mf, hybrid and bpmf vs Surprise SVD: RMSE per fold, fit seconds
  latest    ml-latest-small, random 90/10 with seeds 0..2: mf, hybrid and bpmf vs Surprise SVD RMSE
  ranking   ml-100k leave-last-out: the served ranking vs popularity at NDCG@5, full table
  families  ml-100k random seed 0: all five families next to the baselines

    .venv/bin/python -m benchmarks.bench_quality [--section folds latest ranking families] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MOVIELENS_TEST_DATA", ROOT.parent / "shared" / "data" / "movielens"))
SECTIONS = ("folds", "latest", "ranking", "families")


def _load(name: str, data: Path):  # type: ignore[no-untyped-def]
    from recommender.data.movielens import load_movielens

    cache = Path(tempfile.gettempdir()) / "bench_quality_cache"
    return load_movielens(name, cache_dir=cache, local_path=data / name, progress=False)


def _row(name: str, r: dict) -> str:
    from recommender.pipeline.evaluate import _fmt

    return (
        f"{name:<22}{_fmt(r['rmse']):>8}{_fmt(r['mae']):>8}{_fmt(r['ndcg@5']):>8}"
        f"{_fmt(r['coverage'], 3):>8}{_fmt(r['fit_seconds'], 1):>8}"
    )


FOLD_FAMILIES = ("mf", "hybrid", "bpmf")


def folds(data: Path, out: dict) -> None:
    from recommender.pipeline.evaluate import run_evaluation

    ds = _load("ml-100k", data)
    runs = {}
    for family in FOLD_FAMILIES:
        # the baselines once, with the first family
        runs[family] = run_evaluation(
            ds, "ml100k-folds", family, None, 0, baselines=family == FOLD_FAMILIES[0]
        )
    out["folds"] = runs
    models = {f: runs[f]["results"]["model"] for f in FOLD_FAMILIES}
    columns = {**models, "SVD": runs["mf"]["results"]["surprise_svd"]}
    print("\nml-100k u1..u5 (mku.sh blocks), mf, hybrid (default) and bpmf vs Surprise SVD")
    header = [f"{n} RMSE" for n in columns] + [f"{n} fit s" for n in columns]
    print(f"{'fold':<6}" + "".join(f"{h:>13}" for h in header))
    for i in range(5):
        rmse = "".join(f"{r['folds'][i]['rmse']:>13.4f}" for r in columns.values())
        secs = "".join(f"{r['folds'][i]['fit_seconds']:>13.1f}" for r in columns.values())
        print(f"u{i + 1:<5}{rmse}{secs}")
    rmse = "".join(f"{r['rmse']:>13.4f}" for r in columns.values())
    secs = "".join(f"{r['fit_seconds']:>13.1f}" for r in columns.values())
    print(f"{'mean':<6}{rmse}{secs}")
    for name, r in models.items():
        slowest = max(f["fit_seconds"] for f in r["folds"])
        verdict = "met" if r["rmse"] <= 0.905 else "NOT met"
        print(f"{name}: mean RMSE <= 0.905 {verdict}; slowest fold {slowest:.1f}s (target < 30 s)")


def latest(data: Path, out: dict) -> None:
    from recommender.pipeline.evaluate import run_evaluation

    ds = _load("ml-latest-small", data)
    print("\nml-latest-small random 90/10, mf, hybrid (default) and bpmf vs Surprise SVD on the same splits")
    print(f"{'family':<8}{'seed':<6}{'RMSE':>10}{'SVD RMSE':>10}{'gain':>8}{'fit s':>8}")
    out["latest"] = {}
    for family in ("mf", "hybrid", "bpmf"):
        gains = []
        for seed in (0, 1, 2):
            res = run_evaluation(ds, "random", family, None, seed)
            r = res["results"]
            out["latest"][f"{family}-{seed}"] = r
            gain = 1 - r["model"]["rmse"] / r["surprise_svd"]["rmse"]
            gains.append(gain)
            print(
                f"{family:<8}{seed:<6}{r['model']['rmse']:>10.4f}{r['surprise_svd']['rmse']:>10.4f}"
                f"{gain:>8.1%}{r['model']['fit_seconds']:>8.1f}",
                flush=True,
            )
        verdict = "met" if min(gains) >= 0.03 else "NOT met on every seed"
        print(f"{family}: mean gain {sum(gains) / len(gains):.1%} (target >= 3.0% on each seed: {verdict})")


def ranking(data: Path, out: dict) -> None:
    from recommender.pipeline.evaluate import format_table, run_evaluation

    ds = _load("ml-100k", data)
    res = run_evaluation(ds, "leave-last-out", "mf", None, 0)
    unblended = run_evaluation(ds, "leave-last-out", "mf", {"rank_weight": 0.0}, 0, baselines=False)
    res["results"]["model (rank_weight=0)"] = unblended["results"]["model"]
    hybrid = run_evaluation(ds, "leave-last-out", "hybrid", None, 0, baselines=False)
    res["results"]["hybrid (served)"] = hybrid["results"]["model"]
    bpmf = run_evaluation(ds, "leave-last-out", "bpmf", None, 0, baselines=False)
    res["results"]["bpmf (served)"] = bpmf["results"]["model"]
    out["ranking"] = res
    print(
        "\nml-100k leave-last-out (each user's 10 latest ratings), the ranking ServingModel.recommend serves"
    )
    print(format_table(res))
    pop = res["results"]["popularity"]["ndcg@5"]
    for name in ("model", "hybrid (served)", "bpmf (served)"):
        print(f"{name} served ranking beats popularity at NDCG@5: {res['results'][name]['ndcg@5'] > pop}")


def families(data: Path, out: dict) -> None:
    from recommender.families import FAMILIES
    from recommender.pipeline.evaluate import run_evaluation

    ds = _load("ml-100k", data)
    table: dict[str, dict] = {}
    baselines: dict[str, dict] = {}
    for i, family in enumerate(FAMILIES):
        res = run_evaluation(ds, "random", family, None, 0, baselines=i == 0)  # the baselines once
        table[family] = res["results"]["model"]
        baselines = baselines or {k: v for k, v in res["results"].items() if k != "model"}
    table.update(baselines)
    out["families"] = table
    print("\nml-100k random 90/10 seed 0: all families and baselines")
    print(f"{'name':<22}{'RMSE':>8}{'MAE':>8}{'NDCG@5':>8}{'cover':>8}{'fit s':>8}")
    for name, r in table.items():
        print(_row(name, r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--section", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder holding ml-100k/ and ml-latest-small/"
    )
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    out: dict = {}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    for section in args.section:
        {"folds": folds, "latest": latest, "ranking": ranking, "families": families}[section](args.data, out)
    print(f"\nload average at start {load:.1f} on {os.cpu_count()} cores (shared machine: timings are noisy)")
    print(f"total {time.perf_counter() - started:.0f}s")
    print(f"reproduce: .venv/bin/python -m benchmarks.bench_quality --section {' '.join(args.section)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
