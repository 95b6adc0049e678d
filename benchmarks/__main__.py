"""Run the benchmarks: ``python -m benchmarks`` lists them, ``python -m benchmarks NAME ...`` runs some,
``python -m benchmarks all`` runs every one, each in its own process (so peak memory and threads are
its own). Each prints its table and the command that reproduces it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> dict[str, str]:
    found = {}
    for info in pkgutil.iter_modules([str(HERE)]):
        if info.name.startswith("bench_"):
            doc = (HERE / f"{info.name}.py").read_text().split('"""')[1].strip().splitlines()[0]
            found[info.name.removeprefix("bench_")] = doc
    return dict(sorted(found.items()))


def main(argv: list[str]) -> int:
    benches = available()
    if not argv:
        print("Benchmarks (python -m benchmarks NAME [NAME ...] | all):")
        for name, doc in benches.items():
            print(f"  {name:<12} {doc}")
        return 0
    names = list(benches) if argv == ["all"] else argv
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benches)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== {name}: {sys.executable} -m benchmarks.bench_{name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"])
        print(f"=== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
