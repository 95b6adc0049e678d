"""``classifier``: a softmax over the rating classes; the prediction is the expected rating.

Evaluate-only (no export): its output is not ``mu + b_u + b_i + p.q``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from recommender.core.types import RatingScale
from recommender.families.keras_fit import KerasFamily, keras_predict
from recommender.families.mlp import MLPParams
from recommender.features.encoding import Encoded

__all__ = ["Classifier", "ClassifierParams"]


@dataclass(frozen=True)
class ClassifierParams(MLPParams):
    FAMILY: ClassVar[str] = "classifier"


class Classifier(KerasFamily):
    name: ClassVar[str] = "classifier"
    params_type: ClassVar[type[ClassifierParams]] = ClassifierParams
    loss: ClassVar[str] = "sparse_categorical_crossentropy"

    def build(self, params: ClassifierParams, enc: Encoded, scale: RatingScale, seed: int) -> Any:
        from recommender.families.layers import build_classifier

        return build_classifier(
            len(enc.user_keys),
            len(enc.movie_ids),
            len(scale.classes),
            dim=params.dim,
            l2=params.l2,
            hidden=params.hidden,
            dropout=params.dropout,
            seed=seed,
        )

    def targets(self, enc: Encoded, scale: RatingScale) -> np.ndarray:
        """The index of each rating's class (the nearest allowed star value)."""
        classes = np.asarray(scale.classes)
        return np.abs(enc.ratings[:, None] - classes[None, :]).argmin(axis=1).astype(np.int32)

    def predict(
        self, model: Any, enc: Encoded, scale: RatingScale, users: np.ndarray, movies: np.ndarray
    ) -> np.ndarray:
        probs = keras_predict(model, self.inputs(enc, users, movies))
        return probs @ np.asarray(scale.classes, dtype=np.float64)
