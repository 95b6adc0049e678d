"""``mf``: biased matrix factorisation, ``mu + b_u + b_i + p_u . q_i``, fitted with Adam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from recommender.core.types import RatingScale
from recommender.families.base import KerasParams
from recommender.families.keras_fit import KerasFamily, export_serving, layer_weights
from recommender.features.encoding import Encoded
from recommender.scoring.model import ServingModel

__all__ = ["MF", "MFParams", "factor_arrays"]


@dataclass(frozen=True)
class MFParams(KerasParams):
    FAMILY: ClassVar[str] = "mf"

    dim: int = 48
    #: per-rating penalties on the factors and the biases (see layers._embedding)
    l2: float = 0.12
    bias_l2: float = 0.05

    def validate(self) -> None:
        super().validate()
        self._check("dim", self.dim >= 1, ">= 1")
        self._check("l2", self.l2 >= 0, ">= 0")
        self._check("bias_l2", self.bias_l2 >= 0, ">= 0")


def factor_arrays(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(P, b_u, Q, b_i)`` of a Keras mf model (also bpmf's container)."""
    return (
        layer_weights(model, "user_embedding"),
        layer_weights(model, "user_bias")[:, 0],
        layer_weights(model, "movie_embedding"),
        layer_weights(model, "movie_bias")[:, 0],
    )


class MF(KerasFamily):
    name: ClassVar[str] = "mf"
    servable: ClassVar[bool] = True
    params_type: ClassVar[type[MFParams]] = MFParams

    def build(self, params: MFParams, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        from recommender.families.layers import build_mf

        return build_mf(
            len(enc.user_keys),
            len(enc.movie_ids),
            global_mean=enc.global_mean,
            dim=params.dim,
            l2=params.l2,
            bias_l2=params.bias_l2,
            seed=seed,
        )

    def export(
        self, model: Any, params: MFParams, enc: Encoded, scale: RatingScale, *, seed: int, version: str
    ) -> ServingModel:
        # fold-in uses the training penalties: a folded-in member is shrunk like a trained one
        return export_serving(
            self,
            model,
            factor_arrays(model),
            enc,
            scale,
            content_reg=params.content_reg,
            fold=(params.l2, params.bias_l2),
            seed=seed,
            version=version,
        )
