"""``mlp``: user and movie embeddings concatenated through dense layers (evaluate-only: no export)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from recommender.core.types import RatingScale
from recommender.families.base import KerasParams
from recommender.families.keras_fit import KerasFamily
from recommender.features.encoding import Encoded

__all__ = ["MLP", "MLPParams"]


@dataclass(frozen=True)
class MLPParams(KerasParams):
    FAMILY: ClassVar[str] = "mlp"

    lr: float = 0.002
    dim: int = 32
    l2: float = 0.02
    #: widths of the dense layers (``--param hidden=64,32``)
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.2

    def validate(self) -> None:
        super().validate()
        self._check("dim", self.dim >= 1, ">= 1")
        self._check("l2", self.l2 >= 0, ">= 0")
        self._check("hidden", bool(self.hidden) and min(self.hidden) >= 1, "widths >= 1, e.g. 64,32")
        self._check("dropout", 0 <= self.dropout < 1, "in [0, 1)")


class MLP(KerasFamily):
    name: ClassVar[str] = "mlp"
    params_type: ClassVar[type[MLPParams]] = MLPParams

    def build(self, params: MLPParams, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        from recommender.families.layers import build_mlp

        return build_mlp(
            len(enc.user_keys),
            len(enc.movie_ids),
            global_mean=enc.global_mean,
            dim=params.dim,
            l2=params.l2,
            hidden=params.hidden,
            dropout=params.dropout,
            seed=seed,
        )
