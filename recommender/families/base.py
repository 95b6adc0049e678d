"""The contract every model family meets, its typed hyper-parameters, and what a fit returns.

A family is one object (see the table in ``recommender/families/__init__.py``) that owns a frozen
params dataclass, ``build``, ``fit``, ``predict`` and, if it can be served, ``export`` to the numpy
:class:`~recommender.scoring.model.ServingModel`. Nothing here imports TensorFlow: families import
it inside ``build``/``fit``, so the table (and ``train.py --help``) stays cheap to import.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from recommender.core.types import RatingScale
from recommender.features.encoding import Encoded
from recommender.scoring.model import ServingModel

__all__ = [
    "HYBRID_VARIANTS",
    "EpochCallback",
    "ExportParityError",
    "Family",
    "FamilyParams",
    "Fitted",
    "KerasParams",
    "TrainResult",
]

#: The hybrid model's variants (built by ``layers.build_hybrid``): "no_user" is what a brand-new member
#: gets (no user side); "no_movie" represents a movie by its features alone (a movie outside training).
HYBRID_VARIANTS = ("full", "no_user", "no_movie")
#: Called after each epoch (or Gibbs sweep) with ``{"epoch", "epochs", "loss", "val_loss", "val_rmse"}``.
EpochCallback = Callable[[dict[str, Any]], None]


class ExportParityError(RuntimeError):
    """The exported numpy arrays do not reproduce the Keras model's predictions."""


def _fail(owner: type, name: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"{owner.FAMILY or owner.__name__}: {name} must be {rule}, got {value!r}")


def _coerce(owner: type, name: str, hint: Any, value: Any) -> Any:
    """``value`` (a Python value, or the text given on the command line) as the field's type."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        (hint,) = [a for a in args if a is not type(None)]
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise TypeError
            return text in ("1", "true", "yes", "on")
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value.strip()
        if isinstance(value, bool):
            raise TypeError  # True is an int to Python, never a hyper-parameter value here
        if hint is int:
            number = float(value.strip()) if isinstance(value, str) else value
            if not isinstance(number, int | float) or not float(number).is_integer():
                raise TypeError
            return int(number)
        if hint is float:
            if isinstance(value, str):
                return float(value.strip())
            if not isinstance(value, int | float):
                raise TypeError
            return float(value)
        if typing.get_origin(hint) is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(int(str(x).strip()) for x in items if str(x).strip())
    except (TypeError, ValueError):
        kind = getattr(hint, "__name__", str(hint))
        raise _fail(owner, name, f"a {kind}", value) from None
    raise TypeError(f"{owner.__name__}.{name}: unsupported field type {hint!r}")  # a programming error


def coerce_overrides(owner: type, name: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``overrides`` of a frozen params dataclass as typed values (ValueError naming an unknown key
    with the known ones, or a bad value); ``None`` values are left out."""
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(owner)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) for {name}: {name} has no parameter "
            f"{', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
        )
    hints = typing.get_type_hints(owner)
    return {k: _coerce(owner, k, hints[k], v) for k, v in overrides.items() if v is not None}


@dataclass(frozen=True)
class FamilyParams:
    """Hyper-parameters every family has. Subclasses add theirs and check them in :meth:`validate`."""

    FAMILY: ClassVar[str] = ""

    #: share of the training ratings held back for early stopping and the rank-weight choice
    val_fraction: float = 0.05
    #: ridge strength of the content model (genres/year -> movie vector) for movies without one
    content_reg: float = 1.0
    #: weight of log(1 + count) in the served ranking; None (``auto``) chooses it on validation
    rank_weight: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self._check("val_fraction", 0 <= self.val_fraction < 0.5, "in [0, 0.5)")
        self._check("content_reg", self.content_reg >= 0, ">= 0")
        if self.rank_weight is not None:
            self._check("rank_weight", self.rank_weight >= 0, ">= 0 or auto")

    def _check(self, name: str, ok: bool, rule: str) -> None:
        value = getattr(self, name)
        if isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise _fail(type(self), name, rule, value)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> Self:
        """The defaults with ``overrides`` applied; values may be text (``"64,32"``, ``"auto"``).

        Raises ValueError naming an unknown key (and the known ones) or a bad value.
        """
        return cls(**coerce_overrides(cls, cls.FAMILY, overrides))

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what a run asked for)."""
        default = type(self)()
        return {k: v for k, v in self.to_dict().items() if getattr(default, k) != getattr(self, k)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class KerasParams(FamilyParams):
    """What every family fitted with Adam and early stopping has."""

    epochs: int = 30
    batch_size: int = 2048
    lr: float = 0.005
    #: epochs without a better validation RMSE before stopping (best weights are restored)
    patience: int = 3

    def validate(self) -> None:
        super().validate()
        self._check("epochs", self.epochs >= 1, ">= 1")
        self._check("batch_size", self.batch_size >= 1, ">= 1")
        self._check("lr", self.lr > 0, "> 0")
        self._check("patience", self.patience >= 1, ">= 1")


@dataclass
class Fitted:
    """What a family's ``fit`` returns."""

    model: Any  # keras.Model (bpmf: an mf container holding the sampled factors)
    history: dict[str, list[float]]
    val_rmse: float  # best validation RMSE seen while fitting (unclipped predictions)
    best_epoch: int


@dataclass
class TrainResult:
    model: Any  # keras.Model
    family: str
    params: FamilyParams
    seed: int
    history: dict[str, list[float]]
    serving: ServingModel | None
    val_rmse: float
    metrics: dict
    fit_seconds: float
    rank_weight: float = 0.0
    #: the run's encoding; without its per-rating arrays when a ranking model was fitted too
    encoded: Encoded | None = field(default=None, repr=False)


class Family(Protocol):
    """One model family: its params type, how to build, fit, predict and (if servable) export."""

    name: str
    #: True if ``export`` gives a ServingModel (``mu + b_u + b_i + p.q``); else evaluate-only
    servable: bool
    params_type: type[FamilyParams]

    def build(self, params: Any, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        """A fresh, untrained Keras model (imports TensorFlow)."""
        ...

    def fit(
        self, params: Any, enc: Encoded, scale: RatingScale, seed: int, on_epoch: EpochCallback | None
    ) -> Fitted:
        """Fit on ``enc.fit`` rows, early-stopped (or checked) on ``enc.val``."""
        ...

    def inputs(self, enc: Encoded, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
        """The Keras model's input dict for dense ``(users[j], movies[j])`` pairs."""
        ...

    def predict(
        self, model: Any, enc: Encoded, scale: RatingScale, users: np.ndarray, movies: np.ndarray
    ) -> np.ndarray:
        """Unclipped predicted ratings of dense ``(users[j], movies[j])`` pairs."""
        ...

    def export(
        self, model: Any, params: Any, enc: Encoded, scale: RatingScale, *, seed: int, version: str
    ) -> ServingModel:
        """The numpy serving model, parity-checked against ``model``; servable families only."""
        ...
