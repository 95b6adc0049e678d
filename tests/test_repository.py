"""Rules of the codebase that no single module test would notice breaking."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_recommender_never_imports_discord_or_bot() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"discord", "bot"})
        for p in (ROOT / "recommender").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_outside_bot_imports_bot() -> None:
    sources = [*(ROOT / "recommender").rglob("*.py"), ROOT / "train.py"]
    assert [str(p.relative_to(ROOT)) for p in sources if "bot" in _imports(p)] == []


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
        for p in [*(ROOT / "recommender").rglob("*.py"), *(ROOT / "bot").rglob("*.py"), ROOT / "train.py"]
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert big == {}, f"split these modules: {big}"
