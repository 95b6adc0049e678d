"""ServingModel: numpy-only scoring, fold-in, content model, ranking, persistence."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from recommender.core.errors import NoModel
from recommender.core.types import RatingScale, member_key, ml_key
from recommender.features.content import ContentFeatures
from recommender.scoring.model import ServingModel, fit_content_map
from tests.conftest import ROOT

WIDE = RatingScale(-100.0, 100.0, 0.5)  # no clipping, so exact algebra can be checked


def make_model(
    n_users: int = 5, n_movies: int = 30, dim: int = 4, *, scale: RatingScale = WIDE, seed: int = 0, **kw
) -> ServingModel:
    rng = np.random.default_rng(seed)
    content = ContentFeatures(("Comedy", "Drama"), 1990.0, 10.0)
    return ServingModel(
        version="v1",
        family="mf",
        scale=scale,
        global_mean=3.5,
        user_keys=[ml_key(i + 1) for i in range(n_users)],
        user_factors=rng.normal(size=(n_users, dim)),
        user_bias=rng.normal(scale=0.1, size=n_users),
        movie_ids=np.arange(100, 100 + n_movies, dtype=np.int64),
        item_factors=rng.normal(size=(n_movies, dim)),
        item_bias=rng.normal(scale=0.1, size=n_movies),
        item_count=rng.integers(1, 500, n_movies),
        content=content,
        content_weights=rng.normal(size=(content.size, dim + 1)),
        **kw,
    )


def test_member_key_never_collides_with_movielens_users() -> None:
    assert member_key(42) == "member:42"
    assert ml_key(42) == "ml:42"
    assert member_key(42) != ml_key(42)


def test_fold_in_recovers_a_known_user_vector() -> None:
    model = make_model(n_movies=40, bias_reg=0.0)
    true_p, true_b = np.array([0.5, -1.0, 0.25, 2.0]), 0.3
    ids = model.movie_ids[:25]
    idx = model.movie_index(ids)
    stars = model.global_mean + true_b + model.item_bias[idx] + model.item_factors[idx] @ true_p
    p, b = model.fold_in(ids.tolist(), stars.tolist(), reg=0.0)
    np.testing.assert_allclose(p, true_p, atol=1e-6)
    assert b == pytest.approx(true_b, abs=1e-6)
    # the default penalty shrinks toward the zero user but keeps the direction
    p_reg, _ = model.fold_in(ids.tolist(), stars.tolist())
    assert np.linalg.norm(p_reg) < np.linalg.norm(true_p)
    assert np.dot(p_reg, true_p) / (np.linalg.norm(p_reg) * np.linalg.norm(true_p)) > 0.9


def test_fold_in_ignores_unknown_movies_and_handles_none_known() -> None:
    model = make_model()
    p, b = model.fold_in([1, 2], [5.0, 4.0])
    assert np.all(p == 0) and b == 0.0
    p1, b1 = model.fold_in([100, 101, 999_999], [5.0, 1.0, 3.0])
    p2, b2 = model.fold_in([100, 101], [5.0, 1.0])
    np.testing.assert_allclose(p1, p2)
    assert b1 == b2


def test_predict_matches_formula_and_clips_to_scale() -> None:
    model = make_model()
    user = model.user_vector(ml_key(2))
    assert user is not None and model.user_vector(member_key(2)) is None
    p, b = user
    got = model.predict(user, [105, 107])
    expected = [model.global_mean + b + model.item_bias[i] + model.item_factors[i] @ p for i in (5, 7)]
    np.testing.assert_allclose(got, expected)
    narrow = make_model(scale=RatingScale(1.0, 5.0, 1.0))
    extreme = (np.full(4, 50.0), 10.0)
    assert narrow.predict(extreme, [100, 101, 102]).max() <= 5.0
    assert narrow.predict((np.full(4, 0.0), -50.0), [100]).min() >= 1.0
    # a movie without an embedding gets the user's baseline, not an error
    assert narrow.predict((np.zeros(4), 0.5), [1])[0] == pytest.approx(4.0)


def test_recommend_never_returns_excluded_movies_and_is_sorted() -> None:
    model = make_model(n_movies=30)
    user = model.user_vector(ml_key(1))
    assert user is not None
    full = model.recommend(user, 30)
    assert len(full) == 30
    exclude = {m for m, _ in full[:10]} | {555}  # the ten best, plus an id the model doesn't know
    picks = model.recommend(user, 10, exclude)
    assert len(picks) == 10
    assert not exclude & {m for m, _ in picks}
    scores = model.rank_scores(user)[model.movie_index([m for m, _ in picks])]
    assert list(scores) == sorted(scores, reverse=True)
    # asking for more than is left returns what is left, never an excluded one
    rest = model.recommend(user, 100, exclude)
    assert len(rest) == 20 and not exclude & {m for m, _ in rest}
    assert model.recommend(user, 5, set(model.movie_ids.tolist())) == []


def test_rank_weight_favours_movies_with_more_ratings() -> None:
    base = make_model(rank_weight=0.0)
    blended = make_model(rank_weight=5.0)
    user = base.user_vector(ml_key(1))
    assert user is not None
    counts = dict(zip(base.movie_ids.tolist(), base.item_count.tolist(), strict=True))
    plain = [counts[m] for m, _ in base.recommend(user, 5)]
    pop = [counts[m] for m, _ in blended.recommend(user, 5)]
    assert np.mean(pop) > np.mean(plain)
    # the stars shown are still the model's prediction, not the blended score
    m, stars = blended.recommend(user, 1)[0]
    assert stars == pytest.approx(blended.predict(user, [m])[0])


def test_similar_by_cosine_finds_a_near_duplicate() -> None:
    model = make_model(n_movies=20)
    model.item_factors[7] = model.item_factors[3] * 2.5 + 1e-3  # same direction, other length
    model.__post_init__()
    top = model.similar(103, 3)
    assert top[0][0] == 107 and top[0][1] == pytest.approx(1.0, abs=1e-3)
    assert 103 not in [m for m, _ in top]
    assert model.similar(1, 3) == []


def test_content_model_predicts_for_movies_without_an_embedding() -> None:
    content = ContentFeatures.fit([("Comedy",), ("Drama",), ("Comedy", "Drama")], [1980, None, 2000])
    assert content.genres == ("Comedy", "Drama")
    f = content.matrix([("Comedy",), ("Drama",)] * 10, [1990.0, 1990.0] * 10)
    targets = np.tile([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]], (10, 1))  # [q (2 dims), bias]
    w = fit_content_map(f, targets, np.ones(20), reg=1e-6)
    model = make_model(dim=2)
    model.content, model.content_weights = content, w
    q, b = model.content_vector(("Comedy",), 1990)
    np.testing.assert_allclose(q, [1.0, 0.0], atol=1e-3)
    assert b == pytest.approx(0.5, abs=1e-3)
    likes_comedy = (np.array([2.0, -2.0]), 0.0)
    assert model.predict_content(likes_comedy, ("Comedy",), 1990) > model.predict_content(
        likes_comedy, ("Drama",), 1990
    )


def test_save_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = make_model(rank_weight=0.3, metrics={"val_rmse": 0.9}, trained_at=123.0)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idmaps.json", "serving.npz"]
    loaded = ServingModel.load(tmp_path)
    assert loaded.user_keys == model.user_keys and loaded.rank_weight == 0.3
    assert loaded.metrics == {"val_rmse": 0.9} and loaded.trained_at == 123.0
    user = model.user_vector(ml_key(3))
    assert user is not None
    assert loaded.recommend(user, 5, {101}) == model.recommend(user, 5, {101})
    assert loaded.predict_content(user, ("Drama",), 1995) == model.predict_content(user, ("Drama",), 1995)


def test_load_reports_missing_or_corrupt_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoModel, match="missing"):
        ServingModel.load(tmp_path)
    make_model().save(tmp_path)
    (tmp_path / "serving.npz").write_bytes(b"half-written")
    with pytest.raises(NoModel, match="unreadable"):
        ServingModel.load(tmp_path)
    make_model().save(tmp_path)
    meta = json.loads((tmp_path / "idmaps.json").read_text())
    meta["user_keys"] = meta["user_keys"][:-1]  # id map no longer matches the arrays
    (tmp_path / "idmaps.json").write_text(json.dumps(meta))
    with pytest.raises(NoModel):
        ServingModel.load(tmp_path)


def test_importing_scoring_does_not_import_tensorflow() -> None:
    code = (
        "import sys, recommender.scoring.model as s; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "print(','.join(bad) or 'clean')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "clean", out.stdout + out.stderr
