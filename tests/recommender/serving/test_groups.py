"""Group picks: the aggregations on hand-made matrices, exclusions, filters, the relaxed floor."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.core.types import RatingScale, ml_key
from recommender.features.content import ContentFeatures
from recommender.scoring.model import ServingModel
from recommender.serving.groups import (
    DEFAULT_AGGREGATION,
    Aggregation,
    GroupMember,
    GroupPick,
    GroupReason,
    GroupScorer,
    MemberKind,
    average,
    average_without_misery,
    choose_for_group,
    crowd_stars,
    least_misery,
    mean_minus_std,
    soft_min,
)

IDS = np.array([10, 20, 30, 40])
# Movie 10 is loved by one member and hated by the other; 20 is good for both; 30 fine; 40 poor.
TWO = np.array(
    [
        [5.0, 4.0, 3.5, 2.0],
        [1.0, 3.8, 3.5, 2.5],
    ]
)
TRAINED2 = [MemberKind.TRAINED, MemberKind.TRAINED]


def ids(choice) -> list[int]:  # type: ignore[no-untyped-def]
    return [p.movie_id for p in choice.picks]


def test_aggregations_on_a_hand_made_matrix() -> None:
    np.testing.assert_allclose(average(TWO), [3.0, 3.9, 3.5, 2.25])
    np.testing.assert_allclose(least_misery(TWO), [1.0, 3.8, 3.5, 2.0])
    np.testing.assert_allclose(average_without_misery(TWO, 3.0), [-np.inf, 3.9, 3.5, -np.inf])
    np.testing.assert_allclose(mean_minus_std(TWO, 1.0), [1.0, 3.8, 3.5, 2.0])
    # soft-min lies between the minimum and the mean, and tends to each at the ends
    s = soft_min(TWO, 0.5)
    assert np.all(s >= least_misery(TWO) - 1e-9) and np.all(s <= average(TWO) + 1e-9)
    np.testing.assert_allclose(soft_min(TWO, 1e-3), least_misery(TWO), atol=1e-2)
    np.testing.assert_allclose(soft_min(TWO, 1e3), average(TWO), atol=1e-2)
    np.testing.assert_allclose(soft_min(TWO, 0.0), least_misery(TWO))


def test_a_movie_one_member_would_hate_is_never_the_pick_under_the_floor() -> None:
    loved_by_one = np.array([[5.0, 3.6, 3.5], [5.0, 3.6, 3.5], [2.0, 3.6, 3.5]])
    movies = np.array([1, 2, 3])
    kinds = [MemberKind.TRAINED] * 3
    assert ids(choose_for_group(loved_by_one, movies, kinds=kinds, k=1, aggregation="average")) == [1]
    for floor in (2.5, 3.0, 3.5):
        choice = choose_for_group(
            loved_by_one, movies, kinds=kinds, k=2, aggregation=Aggregation.WITHOUT_MISERY, param=floor
        )
        assert 1 not in ids(choice)
        assert GroupReason.FLOOR_KEPT in choice.reasons and GroupReason.FLOOR_RELAXED not in choice.reasons
    # Only 20 and 30 clear 3.0; filling k=3 lowers the floor to 2.0, which still keeps 10 (a 1.0) out.
    relaxed = choose_for_group(TWO, IDS, kinds=TRAINED2, k=3, aggregation="without_misery", param=3.0)
    assert ids(relaxed) == [20, 30, 40] and GroupReason.FLOOR_RELAXED in relaxed.reasons


def test_picks_are_frozen_and_carry_every_members_stars() -> None:
    choice = choose_for_group(TWO, IDS, kinds=TRAINED2, k=2, aggregation="average")
    assert choice.picks[0] == GroupPick(20, pytest.approx(3.9), (4.0, 3.8))
    assert choice.picks[1].per_member == (3.5, 3.5)
    with pytest.raises(AttributeError):
        choice.picks[0].score = 0.0  # type: ignore[misc]
    assert choice.aggregation is Aggregation.AVERAGE and choice.kinds == tuple(TRAINED2)


def test_ties_break_by_movie_id() -> None:
    tied = np.full((2, 6), 4.0)
    movies = np.array([60, 20, 50, 10, 40, 30])
    for agg in Aggregation:
        assert ids(choose_for_group(tied, movies, kinds=TRAINED2, k=3, aggregation=agg)) == [10, 20, 30]


def test_excluded_movies_never_appear() -> None:
    rng = np.random.default_rng(0)
    stars = rng.uniform(1, 5, (4, 50))
    movies = np.arange(1, 51)
    best = [int(m) for m in movies[np.argsort(-stars.mean(axis=0))[:10]]]
    for agg in Aggregation:
        for exclude in (set(best), np.array(best), best):
            choice = choose_for_group(
                stars, movies, kinds=[MemberKind.TRAINED] * 4, exclude=exclude, k=5, aggregation=agg
            )
            assert len(choice.picks) == 5 and not set(ids(choice)) & set(best)


def test_filters_are_respected() -> None:
    allowed = np.array([True, False, True, True])  # e.g. "comedies only": movie 20 is not one
    choice = choose_for_group(TWO, IDS, kinds=TRAINED2, allowed=allowed, k=3, aggregation="average")
    assert ids(choice) == [30, 10, 40]
    nothing = choose_for_group(TWO, IDS, kinds=TRAINED2, allowed=np.zeros(4, bool), k=3)
    assert nothing.picks == () and GroupReason.NO_CANDIDATES in nothing.reasons


def test_every_movie_under_the_floor_still_gets_an_answer_with_the_floor_relaxed() -> None:
    gloomy = np.array([[2.0, 1.0, 2.5, 1.5], [2.5, 3.0, 1.0, 2.0]])
    choice = choose_for_group(gloomy, IDS, kinds=TRAINED2, k=2, aggregation="without_misery", param=3.0)
    assert len(choice.picks) == 2
    assert GroupReason.FLOOR_RELAXED in choice.reasons and GroupReason.FLOOR_KEPT not in choice.reasons
    # the floor drops only as far as needed: the two best minimums are 2.0 (movie 10) and 1.5 (40)
    assert choice.param == pytest.approx(1.5)
    assert ids(choice) == [10, 40]


def test_fewer_candidates_than_k_says_so() -> None:
    choice = choose_for_group(TWO, IDS, kinds=TRAINED2, exclude={10, 20, 30}, k=3)
    assert ids(choice) == [40] and GroupReason.FEWER_THAN_K in choice.reasons


def test_twenty_members() -> None:
    rng = np.random.default_rng(1)
    stars = rng.uniform(3.0, 5.0, (20, 200))
    stars[7, 0] = 1.0  # the best movie for nineteen of them, one member would hate it
    stars[:, 0] = np.where(np.arange(20) == 7, 1.0, 5.0)
    movies = np.arange(1000, 1200)
    kinds = [MemberKind.TRAINED] * 18 + [MemberKind.FOLD_IN, MemberKind.CROWD]
    assert ids(choose_for_group(stars, movies, kinds=kinds, k=1, aggregation="average")) == [1000]
    choice = choose_for_group(stars, movies, kinds=kinds, k=3)
    assert 1000 not in ids(choice) and all(len(p.per_member) == 20 for p in choice.picks)
    assert GroupReason.CROWD_VIEW in choice.reasons


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        choose_for_group(np.zeros((0, 4)), IDS, kinds=[])
    with pytest.raises(ValueError, match="member kinds"):
        choose_for_group(TWO, IDS, kinds=[MemberKind.TRAINED])
    with pytest.raises(ValueError, match="movie_ids"):
        choose_for_group(TWO, IDS[:3], kinds=TRAINED2)
    with pytest.raises(ValueError, match="k must"):
        choose_for_group(TWO, IDS, kinds=TRAINED2, k=0)
    with pytest.raises(ValueError, match="finite"):
        choose_for_group(np.array([[np.nan, 1, 1, 1], [1, 1, 1, 1.0]]), IDS, kinds=TRAINED2)
    with pytest.raises(ValueError, match="allowed"):
        choose_for_group(TWO, IDS, kinds=TRAINED2, allowed=np.ones(3, bool))
    with pytest.raises(ValueError):
        choose_for_group(TWO, IDS, kinds=TRAINED2, aggregation="loudest wins")
    with pytest.raises(ValueError, match="crowd"):
        GroupMember(MemberKind.CROWD, (np.zeros(2), 0.0))
    with pytest.raises(ValueError, match="needs one"):
        GroupMember(MemberKind.TRAINED)


# --- against a serving model ----------------------------------------------------------------------

SCALE = RatingScale(0.5, 5.0, 0.5)


def small_model(rank_weight: float = 0.0) -> ServingModel:
    rng = np.random.default_rng(3)
    content = ContentFeatures(("Comedy", "Drama"), 1990.0, 10.0)
    n_users, n_movies, dim = 4, 40, 3
    return ServingModel(
        version="v1",
        family="mf",
        scale=SCALE,
        global_mean=3.5,
        user_keys=[ml_key(i + 1) for i in range(n_users)],
        user_factors=rng.normal(size=(n_users, dim)),
        user_bias=rng.normal(scale=0.1, size=n_users),
        movie_ids=np.arange(500, 500 + n_movies, dtype=np.int64),
        item_factors=rng.normal(size=(n_movies, dim)),
        item_bias=rng.normal(scale=0.1, size=n_movies),
        item_count=rng.integers(1, 500, n_movies),
        content=content,
        content_weights=rng.normal(size=(content.size, dim + 1)),
        rank_weight=rank_weight,
    )


def test_scorer_stars_match_the_models_predictions() -> None:
    model = small_model()
    users = [model.user_vector(ml_key(1)), (np.array([0.5, -0.2, 0.1]), 0.2)]
    members = [GroupMember(MemberKind.TRAINED, users[0]), GroupMember(MemberKind.FOLD_IN, users[1])]
    stars = GroupScorer(model).stars(members)
    for row, user in enumerate(users):
        np.testing.assert_allclose(stars[row], model.predict(user, model.movie_ids), atol=1e-4)


def test_a_member_with_the_crowds_view() -> None:
    model = small_model(rank_weight=0.0)
    popularity = {int(m): 2.0 for m in model.movie_ids}
    popularity[520] = 5.0  # the crowd's favourite
    crowd = crowd_stars(model.movie_ids, popularity, default=3.0)
    alone = [GroupMember(MemberKind.CROWD)]
    choice = GroupScorer(model).pick(alone, crowd=crowd, k=1, aggregation="average")
    assert ids(choice) == [520] and choice.picks[0].per_member == (5.0,)
    assert choice.kinds == (MemberKind.CROWD,) and GroupReason.CROWD_VIEW in choice.reasons
    with pytest.raises(ValueError, match="no crowd stars"):
        GroupScorer(model).stars(alone)
    np.testing.assert_allclose(crowd_stars(np.array([1, 520]), popularity, 3.0), [3.0, 5.0])


def test_scorer_picks_a_group_with_the_default_and_a_crowd_member() -> None:
    model = small_model(rank_weight=0.1)
    scorer = GroupScorer(model)
    members = [  # the crowd member in the middle: per_member must keep the caller's order
        GroupMember(MemberKind.TRAINED, model.user_vector(ml_key(1))),
        GroupMember(MemberKind.CROWD),
        GroupMember(MemberKind.TRAINED, model.user_vector(ml_key(2))),
    ]
    crowd = np.full(len(model.movie_ids), 3.5)
    rated = {500, 501, 502}
    drama = np.arange(len(model.movie_ids)) % 2 == 0
    choice = scorer.pick(members, crowd=crowd, exclude=rated, allowed=drama, k=3)
    assert choice.aggregation is DEFAULT_AGGREGATION[0] and len(choice.picks) == 3
    assert choice.kinds == (MemberKind.TRAINED, MemberKind.CROWD, MemberKind.TRAINED)
    assert all(p.per_member[1] == 3.5 for p in choice.picks)
    chosen = set(ids(choice))
    assert not chosen & rated and all(drama[m - 500] for m in chosen)
    stars = scorer.stars(members, crowd)
    for pick in choice.picks:
        col = int(np.flatnonzero(model.movie_ids == pick.movie_id)[0])
        np.testing.assert_allclose(pick.per_member, stars[:, col])
        if GroupReason.FLOOR_KEPT in choice.reasons:
            assert min(pick.per_member) >= choice.param - 1e-6  # type: ignore[operator]
