"""Rules of the codebase that no single module test would notice breaking.

The layers of ``recommender/``, lowest first; a module imports only from its own layer or lower
ones (lazy imports inside functions count too), and no two modules import each other in a cycle.
docs/ARCHITECTURE.md draws the same order.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "core",
    "data",
    "features",
    "scoring",
    "evaluation",
    "families",
    "persistence",
    "pipeline",
    "serving",
)
MAX_MODULE_LINES = 400


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as dotted names (``from a import b``
    gives ``a.b`` too, since ``b`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "recommender" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_every_recommender_module_sits_in_a_layer() -> None:
    stray = [_module_name(p) for p in _sources("recommender") if _module_name(p) != "recommender"]
    assert [m for m in stray if _layer(m) is None] == []


def test_imports_only_point_down_the_layers() -> None:
    upward = []
    for path in _sources("recommender"):
        here = _layer(_module_name(path))
        if here is None:
            continue
        for name in _imported_modules(path):
            there = _layer(name)
            if there is not None and there > here:
                upward.append(f"{_module_name(path)} -> {name}")
    assert upward == [], "a lower layer imports a higher one"


def test_no_import_cycles_between_modules() -> None:
    modules = {_module_name(p): p for p in _sources("recommender", "bot")}
    graph = {
        name: {m for m in _imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_recommender_never_imports_discord_or_bot() -> None:
    offenders = {
        _module_name(p): sorted(_top(_imported_modules(p)) & {"discord", "bot"})
        for p in _sources("recommender")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_outside_bot_imports_bot() -> None:
    sources = [*_sources("recommender"), ROOT / "train.py"]
    assert [str(p.relative_to(ROOT)) for p in sources if "bot" in _top(_imported_modules(p))] == []


def test_tensorflow_only_inside_training_code() -> None:
    allowed = ("recommender.families", "recommender.evaluation", "recommender.pipeline")
    offenders = [
        _module_name(p)
        for p in _sources("recommender", "bot")
        if _top(_imported_modules(p)) & {"tensorflow", "keras"} and not _module_name(p).startswith(allowed)
    ]
    assert offenders == []


def test_train_py_is_a_shim_of_the_package_trainer() -> None:
    text = (ROOT / "train.py").read_text(encoding="utf-8")
    assert "recommender.pipeline" in text and len(text.splitlines()) <= 15


def test_ruff_lint_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_source_file_grows_past_a_readable_size() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in [*_sources("recommender", "bot"), ROOT / "train.py"]
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}, f"split these modules: {big}"
