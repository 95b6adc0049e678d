"""The worker protocol's events: strict JSON both ways, malformed lines refused clearly."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from recommender.pipeline.protocol import Done, Epoch, Progress, Reporter, Start, event_from_dict

EVENTS = [
    Start(version="v1", dataset="ml-100k", family="mf", seed=3, params={"dim": 8}, n_ratings=10, n_members=1),
    Start(dataset="ml-100k", family="mf", protocol="random"),
    Epoch(epoch=2, epochs=5, loss=0.9, val_loss=None, val_rmse=0.95),
    Progress("u1 model: RMSE 0.9"),
    Done(
        ok=True, published=True, version="v1", reason="first model", metrics={"val_rmse": 0.9}, plot="x.png"
    ),
    Done.failure("the training process was stopped", stderr="boom", exit_code=-9, seconds=1.5),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_every_event_round_trips_through_a_json_line(event) -> None:  # type: ignore[no-untyped-def]
    line = json.dumps(event.to_dict(), allow_nan=False)
    assert json.loads(line)["event"] == event.kind
    assert event_from_dict(json.loads(line)) == event


def test_non_finite_numbers_travel_as_null_and_numpy_as_plain_numbers() -> None:
    event = Epoch(epoch=1, epochs=1, loss=math.nan, val_loss=math.inf, val_rmse=np.float32(0.5))  # type: ignore[arg-type]
    data = event.to_dict()
    assert data["loss"] is None and data["val_loss"] is None and data["val_rmse"] == 0.5
    done = Done(ok=True, metrics={"rmse": float("nan"), "nested": [np.int64(3), math.inf]})
    assert json.dumps(done.to_dict(), allow_nan=False)  # strict JSON: no NaN token
    assert done.to_dict()["metrics"] == {"rmse": None, "nested": [3, None]}


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"no": "event"},
        {"event": "fireworks"},
        {"event": "epoch", "epochs": 3},
        {"event": "epoch", "epoch": "one", "epochs": 3},
        {"event": "epoch", "epoch": 1, "epochs": 3, "loss": "low"},
        {"event": "done"},
        {"event": "done", "ok": "yes"},
        {"event": "done", "ok": False, "metrics": []},
        {"event": "progress", "message": 3},
        {"event": "start", "params": "dim=8"},
    ],
)
def test_malformed_events_are_refused(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        event_from_dict(data)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = event_from_dict({"event": "start", "family": "mf", "gpu": "none"})
    assert event == Start(family="mf")


def test_reporter_writes_json_lines_or_concise_human_lines(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    Reporter(out).emit(Epoch(epoch=1, epochs=2, loss=math.nan))
    assert json.loads(out.getvalue()) == {
        "event": "epoch",
        "epoch": 1,
        "epochs": 2,
        "loss": None,
        "val_loss": None,
        "val_rmse": None,
        "val_ndcg": None,
        "stage": "rating",
    }
    human = Reporter(None)
    human.emit(Start(family="mf", dataset="ml-100k", seed=0, n_ratings=1000, n_member_ratings=5, n_members=2))
    human.emit(Epoch(epoch=1, epochs=2, loss=0.8, val_loss=math.nan))
    err = capsys.readouterr().err
    assert "training mf on ml-100k: 1,000 ratings (5 from 2 members), seed 0" in err
    assert "epoch 1/2  loss 0.8000  (" in err and "val_loss" not in err
    human.emit(Epoch(epoch=3, epochs=20, loss=6.1, val_ndcg=0.12, stage="ranking"))
    assert "ranking epoch 3/20  loss 6.1000  val_ndcg 0.1200  (" in capsys.readouterr().err
    Reporter(None, quiet=True).emit(Epoch(epoch=1, epochs=2))
    assert capsys.readouterr().err == ""
