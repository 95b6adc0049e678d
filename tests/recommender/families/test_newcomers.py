"""The star weights: chosen per run on newcomers held out whole from both models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recommender.families import training
from recommender.families.newcomers import FIRST_N, STAR_WEIGHT_GRID, carve_newcomers, choose_star_weights
from recommender.families.ranker_params import FALLBACK_STAR_WEIGHTS, RankerParams
from tests.recommender.families.test_training import SCALE, TINY, synthetic
from tests.recommender.scoring.test_model import make_model
from tests.recommender.scoring.test_ranking import make_ranker

N_MOVIES = 60
FIRST = np.arange(100, 120)  # what every newcomer rated first
LATER = np.arange(150, 160)  # what they rated 5 stars afterwards
DECOY = np.arange(120, 130)  # never rated by them


def newcomer_ratings(n_users: int = 30) -> pd.DataFrame:
    rows = []
    for u in range(1, n_users + 1):
        for t, m in enumerate([*FIRST.tolist(), *LATER.tolist()]):
            rows.append((u, m, 3.0 if m < 150 else 5.0, 1000 * u + t))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_carving_holds_out_whole_users_with_enough_ratings():
    ratings = pd.concat(
        [
            newcomer_ratings(30),
            pd.DataFrame(
                {
                    "user_id": [99] * 3,
                    "movie_id": [100, 101, 102],
                    "rating": [4.0] * 3,
                    "timestamp": [1, 2, 3],
                }
            ),
        ]
    )
    kept, newcomers = carve_newcomers(ratings, share=0.5, cap=10, seed=0)
    assert len(newcomers) == 10
    held = {int(k.split(":")[1]) for k in newcomers.users}
    assert 99 not in held  # three ratings: too few to be scored
    assert not set(kept["user_id"]) & held and len(kept) == len(ratings) - 30 * len(held)
    one = next(iter(newcomers.users.values()))
    assert one.movie_ids.tolist() == [*FIRST.tolist(), *LATER.tolist()]  # in time order
    assert one.relevant == frozenset(LATER.tolist())  # rated >= 4 after the first max(FIRST_N)
    assert carve_newcomers(ratings, 0.5, 10, seed=0)[1].users.keys() == newcomers.users.keys()


def test_a_bounded_fit_keeps_a_sample_of_whole_users_and_no_newcomer():
    ratings = newcomer_ratings(200)  # 30 ratings each
    everyone, newcomers = carve_newcomers(ratings, share=0.1, cap=20, seed=3)
    sample, same = carve_newcomers(ratings, share=0.1, cap=20, seed=3, max_kept=1800)
    assert same.users.keys() == newcomers.users.keys()
    held = {int(k.split(":")[1]) for k in newcomers.users}
    users = set(sample["user_id"])
    assert not users & held and users < set(everyone["user_id"])
    assert (sample.groupby("user_id").size() == 30).all()  # whole users
    assert 900 <= len(sample) <= 2700  # about 1800 of the 5400 kept ratings
    again, _ = carve_newcomers(ratings, share=0.1, cap=20, seed=3, max_kept=1800)
    pd.testing.assert_frame_equal(again, sample)
    assert carve_newcomers(ratings, 0.1, 20, seed=3, max_kept=10**6)[0].equals(everyone)


def _models(rating_knows: bool):
    """A rating model and a ranker; one ranks the newcomers' later movies first, the other the decoys."""
    item_bias = np.zeros(N_MOVIES)
    item_bias[(LATER if rating_knows else DECOY) - 100] = 3.0
    model = dataclasses.replace(
        make_model(n_movies=N_MOVIES, rank_weight=0.0),
        item_factors=np.zeros((N_MOVIES, 4)),
        item_bias=item_bias,
    )
    bias = np.zeros(N_MOVIES, dtype=np.float32)
    bias[(DECOY if rating_knows else LATER) - 100] = 3.0
    zeros = np.zeros((N_MOVIES, 2), dtype=np.float32)
    ranker = make_ranker(N_MOVIES, 2, in_all=zeros, in_recent=zeros, out=zeros, out_bias=bias)
    return model, ranker


@pytest.mark.parametrize("rating_knows", [True, False])
def test_the_model_that_ranks_newcomers_better_gets_the_weight(rating_knows):
    model, ranker = _models(rating_knows)
    _, newcomers = carve_newcomers(newcomer_ratings(), share=1.0, cap=30, seed=0)
    table, record = choose_star_weights(model, ranker, newcomers)
    assert [n for n, _ in table] == list(FIRST_N)
    if rating_knows:
        assert all(w > 0 for _, w in table), table
        assert all(max(v) == pytest.approx(1.0) for v in record["val_ndcg_by_n"].values())
    else:
        assert all(w == 0 for _, w in table), table  # ties go to the smaller weight
    assert record["newcomers"] == 30 and record["grid"] == list(STAR_WEIGHT_GRID)
    assert ranker.star_weights == ()  # the ranker is left as it was


@pytest.mark.slow
def test_a_training_run_chooses_its_star_weights_on_newcomers():
    train, _, movies = synthetic(n_users=80, n_movies=40)
    params = {**TINY["mf"], "epochs": 3}
    quick = {"dim": 8, "epochs": 1, "min_count": 2}
    result = training.train_model(
        train, movies, scale=SCALE, family="mf", params=params, ranker={**quick, "newcomers": 0.3}
    )
    ranker = result.serving.ranker
    chosen = result.metrics["ranker"]["newcomers"]
    assert chosen["newcomers"] == 24
    assert [tuple(x) for x in chosen["star_weights"]] == list(ranker.star_weights)
    assert [n for n, _ in ranker.star_weights] == list(FIRST_N)


def test_too_few_newcomers_or_fixed_weights_mean_no_extra_fit():
    train, _, movies = synthetic(n_users=80, n_movies=40)
    check = training.newcomer_check
    few = RankerParams.from_overrides({"newcomers": 0.1})  # 8 newcomers: too few to choose on
    assert check(train, movies, few, SCALE, "mf", TINY["mf"], 0, None) == ([], None)
    fixed = RankerParams.from_overrides({"newcomers": 0.3, "star_weights": "5:2"})
    assert check(train, movies, fixed, SCALE, "mf", TINY["mf"], 0, None) == ([], None)
    assert fixed.star_weight_table() == ((5, 2.0),)
    assert (
        RankerParams().star_weight_table()
        == RankerParams(star_weights=FALLBACK_STAR_WEIGHTS).star_weight_table()
    )


def test_on_big_data_the_check_fits_on_a_sample_of_whole_users(monkeypatch):
    train, _, movies = synthetic(n_users=80, n_movies=40)
    seen = []

    def fake_train(frame, *args, **kwargs):
        seen.append(frame)
        return type("Result", (), {"serving": None})()

    monkeypatch.setattr(training, "train_model", fake_train)
    p = RankerParams.from_overrides({"newcomers": 0.3, "newcomer_fit_ratings": 500})
    assert training.newcomer_check(train, movies, p, SCALE, "mf", TINY["mf"], 0, None) == ([], None)
    (frame,) = seen
    kept_users = set(frame["user_id"])
    assert 0 < len(frame) < 0.5 * len(train) and len(kept_users) < 56  # 80 users, 24 newcomers out
    per_user = train.groupby("user_id").size()
    assert frame.groupby("user_id").size().equals(per_user.loc[sorted(kept_users)])  # whole users
