"""``hybrid``: mf whose movie vector adds a linear map of the movie's features (``q_i + W f_i``).

The features are genres, year, the movie's shrunk average rating and its log rating count in the
training data (see ``features.encoding``). Being linear, it exports to the same arrays as mf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from recommender.core.types import RatingScale
from recommender.families.base import HYBRID_VARIANTS, KerasParams
from recommender.families.keras_fit import KerasFamily, export_serving, layer_weights
from recommender.features.encoding import Encoded
from recommender.scoring.model import ServingModel

__all__ = ["Hybrid", "HybridParams"]


@dataclass(frozen=True)
class HybridParams(KerasParams):
    FAMILY: ClassVar[str] = "hybrid"

    dim: int = 48
    l2: float = 0.12
    bias_l2: float = 0.05
    feature_l2: float = 0.005
    variant: str = "full"
    # The fold-in ridge for members who rated after training; larger than the training penalties,
    # which fold in a member from a handful of ratings worse than popularity (benchmarks/RESULTS.md).
    fold_reg: float = 2.0
    fold_bias_reg: float = 1.0

    def validate(self) -> None:
        super().validate()
        self._check("dim", self.dim >= 1, ">= 1")
        for name in ("l2", "bias_l2", "feature_l2", "fold_reg", "fold_bias_reg"):
            self._check(name, getattr(self, name) >= 0, ">= 0")
        self._check("variant", self.variant in HYBRID_VARIANTS, f"one of {', '.join(HYBRID_VARIANTS)}")


class Hybrid(KerasFamily):
    name: ClassVar[str] = "hybrid"
    servable: ClassVar[bool] = True
    params_type: ClassVar[type[HybridParams]] = HybridParams

    def inputs(self, enc: Encoded, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
        return {**super().inputs(enc, users, movies), "features": enc.hybrid_features[movies]}

    def build(self, params: HybridParams, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        from recommender.families.layers import build_hybrid

        return build_hybrid(
            len(enc.user_keys),
            len(enc.movie_ids),
            enc.hybrid_features.shape[1],
            global_mean=enc.global_mean,
            dim=params.dim,
            l2=params.l2,
            bias_l2=params.bias_l2,
            feature_l2=params.feature_l2,
            variant=params.variant,
            seed=seed,
        )

    def arrays(
        self, model: Any, params: HybridParams, enc: Encoded
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(P, b_u, Q, b_i)``: the feature map folded into every movie's vector and bias."""
        nu, dim = len(enc.user_keys), params.dim
        names = {layer.name for layer in model.layers}
        P = layer_weights(model, "user_embedding") if "user_embedding" in names else np.zeros((nu, dim))
        bu = layer_weights(model, "user_bias")[:, 0] if "user_bias" in names else np.zeros(nu)
        f = enc.hybrid_features.astype(np.float64)
        # "no_user" has no dot product at all, so Keras prunes the movie factors: they are zero here.
        if "feature_factors" in names:
            Q = f @ layer_weights(model, "feature_factors")
        else:
            Q = np.zeros((len(f), dim))
        bi = (f @ layer_weights(model, "feature_bias"))[:, 0]
        if "movie_embedding" in names:
            Q = Q + layer_weights(model, "movie_embedding")
        if "movie_bias" in names:
            bi = bi + layer_weights(model, "movie_bias")[:, 0]
        return P, bu, Q, bi

    def export(
        self, model: Any, params: HybridParams, enc: Encoded, scale: RatingScale, *, seed: int, version: str
    ) -> ServingModel:
        return export_serving(
            self,
            model,
            self.arrays(model, params, enc),
            enc,
            scale,
            content_reg=params.content_reg,
            fold=(params.fold_reg, params.fold_bias_reg),
            seed=seed,
            version=version,
        )
