"""Peak memory and time of loading an ml-25m-sized ``ratings.csv`` with recommender.data.movielens.

Generates a synthetic ml-25m-style folder (``ratings.csv`` of ``--rows`` rows, a small
``movies.csv``) in a temporary directory, then loads it in a fresh subprocess so that the peak RSS
(``ru_maxrss``) belongs to the load alone. ``--compare`` also measures a plain ``pd.read_csv``
with default dtypes, the naive way, for reference. ``--folder DIR --name ml-32m`` loads an existing
folder instead (e.g. one written by ``benchmarks.gen_movielens``, with movies and links); every
check runs when its counts are the README's.

    .venv/bin/python -m benchmarks.bench_loader [--rows 25000000] [--compare] [--data-dir DIR]
    .venv/bin/python -m benchmarks.bench_loader --folder /tmp/ml32m-synth/ml-32m --name ml-32m
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ML25M_ROWS = 25_000_095
N_USERS, N_MOVIES = 162_541, 62_423
WRITE_CHUNK = 1_000_000


def generate(folder: Path, rows: int, seed: int = 0) -> float:
    """Write ``ratings.csv`` and ``movies.csv`` shaped like ml-25m's; return the seconds it took."""
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stars = np.array([f"{x:.1f}" for x in np.arange(1, 11) * 0.5])  # "0.5" .. "5.0" as in the files
    with (folder / "ratings.csv").open("w", newline="") as out:
        out.write("userId,movieId,rating,timestamp\r\n")  # GroupLens's CSVs use CRLF
        for begin in range(0, rows, WRITE_CHUNK):
            n = min(WRITE_CHUNK, rows - begin)
            users = rng.integers(1, N_USERS + 1, n)
            if begin == 0:  # every user rates at least once, so the README's user count holds too
                head = min(n, N_USERS)
                users[:head] = np.arange(1, head + 1)
            users = users.astype(str)
            movies = rng.integers(1, N_MOVIES + 1, n).astype(str)
            ratings = stars[rng.integers(0, 10, n)]
            stamps = rng.integers(789_652_009, 1_574_327_703, n).astype(str)
            out.write("\r\n".join(map(",".join, zip(users, movies, ratings, stamps, strict=True))) + "\r\n")
    with (folder / "movies.csv").open("w", encoding="utf-8", newline="") as out:
        out.write("movieId,title,genres\r\n")
        for movie_id in range(1, N_MOVIES + 1):
            out.write(f'{movie_id},"Movie {movie_id}, The ({1900 + movie_id % 120})",Drama|Comedy\r\n')
    return time.perf_counter() - start


def _vm_hwm() -> int | None:
    """This process's own high-water RSS in bytes (Linux), which, unlike ru_maxrss, exec resets."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _child(folder: Path, mode: str, strict: bool, name: str) -> None:
    """Runs in the subprocess: load once, print one JSON line with the measurements."""
    import resource

    import pandas as pd

    from recommender.data.movielens import load_movielens

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == "loader":
        with tempfile.TemporaryDirectory() as cache:
            data = load_movielens(name, cache_dir=Path(cache), local_path=folder, strict_counts=strict)
        frame = data.ratings
        linked = int(data.movies["imdb_id"].notna().sum())
    else:
        frame = pd.read_csv(folder / "ratings.csv")
        linked = None
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {
        "mode": mode,
        "strict": strict,
        "rows": len(frame),
        "seconds": seconds,
        "peak_rss": peak_kib * 1024,
        "vm_hwm": _vm_hwm(),
        "rss_before": before * 1024,
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
        "dtypes": ",".join(str(t) for t in frame.dtypes),
        "linked_movies": linked,
    }
    print(json.dumps(result))


def _run(*args: str) -> str:
    # Both the generator and each load run in their own process: Linux carries ru_maxrss across
    # fork+exec, so a parent that had built 25M lines of text would inflate the child's peak.
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "benchmarks.bench_loader", *args]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def _measure(folder: Path, mode: str, strict: bool, name: str = "ml-25m") -> dict:
    flags = ["--strict"] if strict else []
    return json.loads(_run("--child", str(folder), "--mode", mode, "--name", name, *flags))


def _readme_counts_match(folder: Path, name: str) -> bool:
    """True when ``folder`` has the README's rating count (then the strict checks can all run)."""
    from recommender.core.types import DATASETS
    from recommender.data.readers import _count_lines

    return _count_lines(folder / "ratings.csv") - 1 == DATASETS[name].n_ratings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=ML25M_ROWS, help="ratings to generate (default: ml-25m's)"
    )
    parser.add_argument("--compare", action="store_true", help="also measure pd.read_csv with default dtypes")
    parser.add_argument(
        "--data-dir", type=Path, help="keep/reuse the synthetic files here instead of a temp dir"
    )
    parser.add_argument("--folder", type=Path, help="load this existing dataset folder instead")
    parser.add_argument("--name", default="ml-25m", help="the dataset --folder holds (default ml-25m)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="loader", help=argparse.SUPPRESS)
    parser.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.mode, args.strict, args.name)
        return
    if args.generate:
        print(generate(args.generate, args.rows))
        return

    modes = ["loader", "naive"] if args.compare else ["loader"]
    if args.folder:
        strict = _readme_counts_match(args.folder, args.name)
        results = [_measure(args.folder, mode, strict, args.name) for mode in modes]
        _report(args, results)
        return
    tmp = None if args.data_dir else Path(tempfile.mkdtemp(prefix="bench-loader-"))
    folder = (args.data_dir or tmp) / "ml-25m"
    try:
        marker = folder / f".rows-{args.rows}-v2"
        if marker.is_file():
            print(f"reusing the synthetic files in {folder}")
        else:
            seconds = float(_run("--generate", str(folder), "--rows", str(args.rows)))
            marker.touch()
            size = (folder / "ratings.csv").stat().st_size
            print(f"generated {args.rows:,} ratings ({size / 2**20:,.0f} MiB) in {seconds:.1f} s in {folder}")
        # At full size the synthetic set matches ml-25m's README counts, so every check runs.
        strict = args.rows == ML25M_ROWS
        results = [_measure(folder, mode, strict) for mode in modes]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _report(args, results)


def _report(args: argparse.Namespace, results: list[dict]) -> None:
    names = {
        "loader": "recommender.data.movielens (chunked, compact)",
        "naive": "pd.read_csv, default dtypes",
    }
    if results[0]["strict"]:
        names["loader"] = "recommender.data.movielens (all checks)"
    print()
    mib = 2**20
    row = "| {:<40} | {:>12} | {:>7} | {:>12} | {:>9} | {:>9} | {}"
    print(row.format("method", "rows", "seconds", "peak RSS MiB", "VmHWM MiB", "frame MiB", "dtypes"))
    print("|" + "|".join("-" * (w + 2) for w in (40, 12, 7, 12, 9, 9, 25)) + "|")
    for r in results:
        hwm = f"{r['vm_hwm'] / mib:,.0f}" if r["vm_hwm"] else "n/a"
        cells = (names[r["mode"]], f"{r['rows']:,}", f"{r['seconds']:.1f}", f"{r['peak_rss'] / mib:,.0f}")
        print(row.format(*cells, hwm, f"{r['frame_bytes'] / mib:,.0f}", r["dtypes"]))
    base = results[0]["rss_before"] / mib
    print("\nPeak RSS is ru_maxrss of the loading process; it includes the interpreter, numpy and pandas")
    print(f"(~{base:,.0f} MiB before loading). VmHWM is the same high-water mark from /proc/self/status.")
    if results[0]["linked_movies"] is not None:
        print(f"Movies with an IMDb id from links.csv: {results[0]['linked_movies']:,}.")
    print("Timings are noisy on a shared machine. Reproduce with:")
    extra = f" --rows {args.rows}" if args.rows != ML25M_ROWS else ""
    if args.folder:
        extra = f" --folder {args.folder} --name {args.name}"
    print(f"  .venv/bin/python -m benchmarks.bench_loader{extra}{' --compare' if args.compare else ''}")


if __name__ == "__main__":
    main()
