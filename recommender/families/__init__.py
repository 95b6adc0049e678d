"""The model families, one object each, and the one table that names them.

Adding a family is one module (its params dataclass, ``build``, ``fit``, ``predict`` and, if it can
be served, ``export``: see :class:`~recommender.families.base.Family`) plus one line below. Nothing
else in the code base compares family names. Importing this package never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender.families.base import Family, FamilyParams
from recommender.families.bpmf import BPMF
from recommender.families.classifier import Classifier
from recommender.families.hybrid import Hybrid
from recommender.families.mf import MF
from recommender.families.mlp import MLP

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "SERVABLE_FAMILIES", "Family", "get_family", "make_params"]

FAMILIES: dict[str, Family] = {f.name: f for f in (MF(), MLP(), Hybrid(), Classifier(), BPMF())}
SERVABLE_FAMILIES = tuple(name for name, f in FAMILIES.items() if f.servable)
#: Embeddings plus genres, year and popularity: the best servable family on every benchmark here
#: (benchmarks/RESULTS.md); it exports to the same arrays as mf and serves the same way.
DEFAULT_FAMILY = "hybrid"


def get_family(name: str) -> Family:
    """The family called ``name``; ValueError listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model family {name!r}; use one of {', '.join(FAMILIES)}") from None


def make_params(family: str, params: FamilyParams | Mapping[str, Any] | None = None) -> FamilyParams:
    """``params`` as ``family``'s typed params: overrides (maybe CLI text) or a ready dataclass."""
    kind = get_family(family).params_type
    if isinstance(params, FamilyParams):
        if type(params) is not kind:
            raise ValueError(f"{type(params).__name__} are not the parameters of {family}")
        return params
    return kind.from_overrides(params)
