"""BPMF: the Gibbs sampler, its compression to one MF, and the bpmf family through train_model.

That bpmf learns the taste groups is checked with every other family in test_training.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.core.types import ml_key
from recommender.families import training
from recommender.families.bpmf import BPMFParams, compress, sample_bpmf
from tests.recommender.families.test_training import SCALE, TINY, _check_parity, synthetic


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return synthetic()


def _dense(frame):  # type: ignore[no-untyped-def]
    return (
        frame["user_id"].to_numpy() - 1,
        frame["movie_id"].to_numpy() - 1,
        frame["rating"].to_numpy(np.float64),
    )


def test_compress_is_exact_when_the_rank_suffices_and_pads_when_it_is_larger() -> None:
    rng = np.random.default_rng(0)
    kept = [(rng.normal(size=(9, 3)), rng.normal(size=(7, 3))) for _ in range(2)]  # mean has rank <= 6
    mean = np.mean([x[:, :-1] @ y[:, :-1].T for x, y in kept], axis=0)
    P, bu, Q, bi = compress(kept, 6)
    np.testing.assert_allclose(P @ Q.T, mean, atol=1e-10)
    np.testing.assert_allclose(bu, (kept[0][0][:, -1] + kept[1][0][:, -1]) / 2)
    np.testing.assert_allclose(bi, (kept[0][1][:, -1] + kept[1][1][:, -1]) / 2)
    P, _, Q, _ = compress(kept, 10)  # only 4 + 4 components exist: the rest are zero columns
    assert P.shape == (9, 10) and Q.shape == (7, 10)
    np.testing.assert_allclose(P @ Q.T, mean, atol=1e-10)
    P2, _, Q2, _ = compress(kept, 2)  # truncation is the best rank-2 approximation (Eckart-Young)
    sv = np.linalg.svd(mean, compute_uv=False)
    assert np.linalg.norm(P2 @ Q2.T - mean) == pytest.approx(np.sqrt(np.sum(sv[2:] ** 2)), rel=1e-8)


def test_same_seed_same_model_other_seed_another_sample(data) -> None:  # type: ignore[no-untyped-def]
    train, _, _ = data
    u, m, r = _dense(train)
    kw = {"global_mean": float(r.mean()), "sweeps": 6, "burn": 2, "dim": 3, "rank": 4}
    a = sample_bpmf(u, m, r, 40, 30, seed=3, **kw)
    b = sample_bpmf(u, m, r, 40, 30, seed=3, **kw)
    c = sample_bpmf(u, m, r, 40, 30, seed=4, **kw)
    np.testing.assert_array_equal(a.user_factors @ a.item_factors.T, b.user_factors @ b.item_factors.T)
    np.testing.assert_array_equal(a.item_bias, b.item_bias)
    assert a.history == b.history
    assert not np.allclose(a.user_factors @ a.item_factors.T, c.user_factors @ c.item_factors.T)


def test_sampler_fits_held_out_pairs_and_learns_the_noise(data) -> None:  # type: ignore[no-untyped-def]
    train, held, _ = data
    u, m, r = _dense(train)
    hu, hm, hr = _dense(held)
    res = sample_bpmf(
        u, m, r, 40, 30, global_mean=float(r.mean()), sweeps=25, burn=8, dim=4, rank=8,
        clip=(1.0, 5.0), val=(hu, hm, hr),
    )  # fmt: skip
    # The groups are noiseless: the sampled noise precision must grow far above its start (2.0).
    assert res.alpha > 20
    assert res.history["val_rmse"][-1] < 0.5 < res.history["val_rmse"][0]
    assert len(res.history["loss"]) == 25


def test_burn_in_must_leave_samples(data) -> None:  # type: ignore[no-untyped-def]
    u, m, r = _dense(data[0])
    with pytest.raises(ValueError, match="burn"):
        sample_bpmf(u, m, r, 40, 30, global_mean=3.0, sweeps=5, burn=5)


@pytest.mark.slow
def test_bpmf_family_exports_like_mf_reports_each_sweep_and_folds_in(data) -> None:  # type: ignore[no-untyped-def]
    train, _, movies = data
    events: list[dict] = []
    params = {**TINY["bpmf"], "sweeps": 12, "burn": 4}
    res = training.train_model(
        train, movies, scale=SCALE, family="bpmf", params=params, seed=0, on_epoch=events.append
    )
    assert [e["epoch"] for e in events] == list(range(1, 13))
    assert all(e["epochs"] == 12 and {"loss", "val_loss", "val_rmse"} <= set(e) for e in events)
    assert len(res.history["loss"]) == len(res.history["val_rmse"]) == 12
    assert res.metrics["epochs_run"] == 12
    assert res.model.name == "mf"  # stored in the Keras mf container
    serving = res.serving
    assert serving is not None and serving.family == "bpmf" and serving.dim == params["rank"]
    _check_parity(res)
    assert res.metrics["export_max_abs_diff"] < 1e-4
    assert (serving.reg, serving.bias_reg) == (
        BPMFParams().fold_reg,
        BPMFParams().fold_bias_reg,
    )
    # the validation RMSE reported is the served model's own, not the trace's
    assert res.val_rmse < 1.0
    # a member who loves even movies, folded in from 4 ratings, is served even movies first
    user = serving.fold_in([2, 4, 1, 3], [5.0, 5.0, 1.0, 1.0])
    top = [mid for mid, _ in serving.recommend(user, 5, exclude={1, 2, 3, 4})]
    assert all(mid % 2 == 0 for mid in top), top
    assert serving.user_vector(ml_key(2)) is not None
