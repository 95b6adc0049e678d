"""The /retrain progress line names the stage a run is in (stages without epochs: EASE, holdout...)."""

from __future__ import annotations

import io
import json

import pytest

from bot.ui.reports import retrain_progress
from recommender.pipeline.protocol import STAGES, Epoch, Progress, Reporter, event_from_dict


def test_progress_line_names_the_stage_and_epochs_stay_as_they_were() -> None:
    stage = "scoring the held-out ratings"
    assert retrain_progress(Progress(stage)) == f"Training… {stage}"
    assert retrain_progress(Epoch(epoch=2, epochs=30, loss=0.5)).startswith(
        "Training the rating model… epoch 2/30"
    )


def test_a_phase_emits_progress_unless_asked_not_to() -> None:
    out = io.StringIO()
    reporter = Reporter(out)
    with reporter.phase("loading the dataset", event=False):
        pass
    with reporter.phase("saving the model"):
        pass
    events = [event_from_dict(json.loads(line)) for line in out.getvalue().splitlines()]
    assert events == [Progress("saving the model")]


WORDS = {"rating": "rating model", "newcomers": "new members", "ranking": "ranking model"}


def test_every_stage_the_protocol_knows_has_words_for_the_admin():
    assert set(WORDS) == set(STAGES)  # a new stage must be named here and in bot/ui/reports.py


@pytest.mark.parametrize("stage", STAGES)
def test_an_epoch_names_the_model_it_trains(stage):
    line = retrain_progress(Epoch(epoch=2, epochs=20, loss=0.5, stage=stage))
    assert WORDS[stage] in line and "epoch 2/20" in line and "loss 0.5000" in line


def test_an_unknown_stage_is_refused_by_the_protocol():
    with pytest.raises(ValueError, match="stage must be one of"):
        Epoch.from_dict({"event": "epoch", "epoch": 1, "epochs": 2, "stage": "dreaming"})
