"""Baselines: popularity ranks like bayesian_popularity; a missing Surprise is a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.popularity import bayesian_popularity
from recommender.evaluation import baselines
from tests.recommender.evaluation.test_splits import _frame


def test_popularity_baseline_ranks_like_bayesian_popularity() -> None:
    frame = _frame()
    pop = baselines.Popularity().fit(frame, pd.DataFrame())
    ids, scores = pop.rank_scores(1)
    ranked = ids[np.argsort(-scores, kind="stable")]
    assert ranked.tolist() == bayesian_popularity(frame).index.tolist()
    table = bayesian_popularity(frame)
    m = int(table.index[0])
    assert pop.predict([1], [m])[0] == pytest.approx(table.loc[m, "score"])


def test_missing_surprise_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import builtins

    real_import = builtins.__import__

    def no_surprise(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "surprise" or name.startswith("surprise."):
            raise ImportError("No module named 'surprise'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_surprise)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[bench\]'"):
        baselines.SurpriseSVD(0).fit(_frame(), pd.DataFrame())
