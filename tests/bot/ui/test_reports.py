"""Retrain progress lines say which model is training."""

from __future__ import annotations

import pytest

from bot.ui.reports import retrain_progress
from recommender.pipeline.protocol import Epoch


@pytest.mark.parametrize(
    ("stage", "words"),
    [("rating", "rating model"), ("newcomers", "new members"), ("ranking", "ranking model")],
)
def test_progress_names_the_stage(stage, words):
    line = retrain_progress(Epoch(epoch=2, epochs=20, loss=0.5, stage=stage))
    assert words in line and "epoch 2/20" in line and "loss 0.5000" in line


def test_an_unknown_stage_is_refused_by_the_protocol():
    with pytest.raises(ValueError, match="stage must be one of"):
        Epoch.from_dict({"event": "epoch", "epoch": 1, "epochs": 2, "stage": "dreaming"})
