"""The ranking model: it learns what users rate next, chooses its knobs on validation, exports exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.families.ranker import RankerParams, fit_ranker
from recommender.families.sequences import carve_latest, histories
from recommender.scoring.ranking import RankingModel

N_ITEMS = 40
SMALL = {"dim": 16, "epochs": 12, "patience": 4, "batch_size": 64, "cuts_per_rating": 0.5, "lr": 0.02}


def chains(n_users: int = 120, length: int = 14, seed: int = 0) -> pd.DataFrame:
    """Users who walk a chain: after movie m they rate m + 1 (from a random start)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        start = int(rng.integers(0, N_ITEMS - length))
        for t in range(length):
            rows.append((u, 1000 + start + t, 4.0 + (t % 2) * 0.5, 10_000 * u + t))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def chain_hits(model: RankingModel) -> int:
    """Of 15 chain walks s..s+5, how often the whole top 5 is among the chain's next ten movies."""
    hits = 0
    for start in range(5, 20):
        seen = [1000 + start + t for t in range(6)]
        scores = model.scores(model.history(seen))
        scores[model.movie_index(seen)] = -np.inf
        top5 = model.movie_ids[np.argsort(-scores)[:5]]
        hits += int(all(seen[-1] < m <= seen[-1] + 10 for m in top5))  # it predicts the next 10
    return hits


def test_histories_are_in_time_order_and_carving_holds_out_the_latest():
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "movie_id": [5, 6, 7, 8, 5, 6],
            "rating": [4, 2, 5, 4, 4, 4],
            "timestamp": [3, 1, 2, 4, 1, 1],
        }
    )
    h = histories(frame)
    assert h.users == ["ml:1", "ml:2"]
    assert h.movie_ids[h.items[0]].tolist() == [6, 7, 5, 8]  # by timestamp
    assert h.movie_ids[h.items[1]].tolist() == [5, 6]  # ties keep file order
    fit, relevant = carve_latest(h, n_last=10)
    assert h.movie_ids[fit.items[0]].tolist() == [6, 7]  # at most half held out
    assert {int(h.movie_ids[i]) for i in relevant[0]} == {5, 8}


def test_learns_what_comes_next_and_exports_with_parity():
    """After movies s..s+5 come s+6.., so the top 5 must be among the next ten."""
    data = chains()
    ranker = fit_ranker(data, {**SMALL, "blend": None}, seed=0)  # the sequence part alone
    info = ranker.metrics
    assert info["parity_max_abs_diff"] < 1e-3
    assert 1 <= info["best_epoch"] <= SMALL["epochs"]
    hits = chain_hits(ranker)
    assert hits >= 12, f"the top 5 were the chain's next movies only {hits}/15 times"


def test_knobs_are_chosen_on_the_training_validation_slice():
    ranker = fit_ranker(chains(), SMALL, seed=1)
    info = ranker.metrics
    assert info["ease_lambda"] in (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0)
    assert set(info["val_ndcg_ease"]) == {
        str(x) for x in (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0)
    }
    assert info["val_ndcg"] == max(info["val_ndcg_blend"].values())
    by_rank = {int(k): v for k, v in info["val_ndcg_by_rank"].items()}
    assert set(by_rank) == {8, 16}  # the narrower projections tried, and the full width
    assert by_rank[info["serve_rank"]] >= 0.99 * by_rank[16] and ranker.out.shape[1] == info["serve_rank"]
    assert ranker.sequence_weight + ranker.item_weight == pytest.approx(1.0)
    assert ranker.ease_indices.size > 0


def test_params_are_validated_and_parsed_from_text():
    p = RankerParams.from_overrides({"dim": "32", "refit": "false", "ease_lambda": "auto", "blend": "2"})
    assert (p.dim, p.refit, p.ease_lambda, p.blend) == (32, False, None, 2.0)
    with pytest.raises(ValueError, match="dropout"):
        RankerParams(dropout=1.0)
    with pytest.raises(ValueError, match="no parameter 'depth'"):
        RankerParams.from_overrides({"depth": 3})
