"""Typed params: every family parses CLI text, rejects bad keys and values clearly; the table is the
only place that compares family names."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from recommender.families import FAMILIES, SERVABLE_FAMILIES, get_family, make_params
from recommender.families.bpmf import BPMFParams
from recommender.families.classifier import ClassifierParams
from recommender.families.hybrid import HybridParams
from recommender.families.mf import MFParams
from recommender.families.mlp import MLPParams

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / "recommender" / "families" / "__init__.py"

# (params type, overrides that must be refused, what the message names)
BAD = {
    "mf": [({"dim": "0"}, "dim"), ({"l2": "-1"}, "l2"), ({"epochs": "2.5"}, "epochs")],
    "hybrid": [({"variant": "both"}, "variant"), ({"feature_l2": "-0.1"}, "feature_l2"), ({"lr": "0"}, "lr")],
    "mlp": [({"hidden": "64,0"}, "hidden"), ({"dropout": "1"}, "dropout"), ({"hidden": "wide"}, "hidden")],
    "classifier": [({"dropout": "-0.1"}, "dropout"), ({"batch_size": "0"}, "batch_size")],
    "bpmf": [({"burn": "120"}, "burn"), ({"rank": "0"}, "rank"), ({"beta0": "nan"}, "beta0")],
}


def test_every_family_is_in_the_bad_value_table() -> None:
    assert set(BAD) == set(FAMILIES)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_params_reject_bad_values_and_unknown_keys(family: str) -> None:
    kind = get_family(family).params_type
    for overrides, name in BAD[family]:
        with pytest.raises(ValueError, match=rf"{family}: {name} must be"):
            kind.from_overrides(overrides)
    with pytest.raises(ValueError, match=r"no parameter 'depth'.*known: .*val_fraction"):
        kind.from_overrides({"depth": 3})
    for common in ({"val_fraction": "0.7"}, {"rank_weight": "-1"}, {"content_reg": "inf"}):
        with pytest.raises(ValueError, match="must be"):
            kind.from_overrides(common)
    with pytest.raises(ValueError, match="must be a"):
        kind.from_overrides({"val_fraction": True})  # a bool is never a number here
    params = kind()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.val_fraction = 0.1  # type: ignore[misc]


def test_overrides_parse_command_line_text() -> None:
    assert MLPParams.from_overrides({"hidden": "128, 64,32", "dropout": "0"}).hidden == (128, 64, 32)
    assert MFParams.from_overrides({"dim": "16", "lr": "1e-3"}) == MFParams(dim=16, lr=0.001)
    assert HybridParams.from_overrides({"rank_weight": "auto"}).rank_weight is None
    assert HybridParams.from_overrides({"rank_weight": "0.5"}).rank_weight == 0.5
    assert MFParams.from_overrides({"dim": 8.0}).dim == 8  # a whole float is fine
    assert MFParams(dim=16).changed() == {"dim": 16}
    assert ClassifierParams().to_dict()["hidden"] == [64, 32]  # JSON-able


def test_make_params_checks_the_family() -> None:
    assert make_params("bpmf", {"sweeps": "10", "burn": "2"}) == BPMFParams(sweeps=10, burn=2)
    assert make_params("mf", MFParams(dim=4)) == MFParams(dim=4)
    with pytest.raises(ValueError, match="not the parameters of mlp"):
        make_params("mlp", ClassifierParams())
    with pytest.raises(ValueError, match="unknown model family 'svd'"):
        make_params("svd")


def test_the_table() -> None:
    assert list(FAMILIES) == ["mf", "mlp", "hybrid", "classifier", "bpmf"]
    assert SERVABLE_FAMILIES == ("mf", "hybrid", "bpmf")
    for name, family in FAMILIES.items():
        assert family.name == name and family.params_type.FAMILY == name


def _family_name_comparisons(path: Path) -> list[str]:
    """``x == "mf"``, ``"bpmf" != y``, ``x in ("mf", "bpmf")`` and ``case "mf":`` against family names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set(FAMILIES)

    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(named(e) for e in node.elts)
        return False

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(named(n) for n in [node.left, *node.comparators]):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.match_case) and named(getattr(node.pattern, "value", None) or ast.Pass()):
            found.append(f"{path.name}:{node.pattern.lineno}")
    return found


def test_only_the_table_compares_family_names() -> None:
    sources = [
        p
        for folder in ("recommender", "bot", "benchmarks")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != TABLE
    ]
    sources.append(ROOT / "train.py")
    offenders = [f"{p.parent.name}/{hit}" for p in sources for hit in _family_name_comparisons(p)]
    assert offenders == [], "look the family up in recommender.families.FAMILIES instead"


def test_the_comparison_finder_finds_comparisons(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text('def f(x):\n    return x == "mf" or x in ("bpmf", "z") or "hybrid" != x\n')
    assert len(_family_name_comparisons(sample)) == 3
