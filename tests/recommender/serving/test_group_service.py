"""RecommenderService.group_picks with a real ServingModel and real storage: each member served by
the path /recommend would use (trained, folded in, the crowd's view), nothing anyone rated or hid,
filters, exclusions, the misery floor, no model at all, and the group's size limits."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.core.types import member_key
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.contract import (
    MAX_GROUP,
    GroupReason,
    InvalidGroup,
    PickFilter,
    PopularityReason,
    ServingPath,
)
from recommender.serving.service import RecommenderService

from .service_fakes import CLUSTER_A, CLUSTER_B, HALF, NEUTRAL, make_model, publish
from .test_service import make_service, open_storage

ALICE, BOB, CAROL, DAN, EVE = (111_111_111_111_111_000 + i for i in range(1, 6))
LONG_AGO = time.time() - 3600  # before the model below was trained


@pytest.fixture
async def storage(tmp_path: Path):
    storage = await open_storage(tmp_path / "bot.sqlite3")
    yield storage
    await storage.close()


def model_with_a_hater():
    """ALICE loves cluster A, BOB cluster B, DAN is trained too and hates cluster A."""
    model = make_model("v1", trained_members={ALICE: CLUSTER_A, BOB: CLUSTER_B, DAN: CLUSTER_A})
    factors = model.user_factors.copy()
    factors[model.user_keys.index(member_key(DAN))] = [-1.5, 0.0, 0.0, 0.0]
    return dataclasses.replace(model, user_factors=factors)


@pytest.fixture
async def service(storage: Storage, tmp_path: Path) -> RecommenderService:
    registry = Registry(tmp_path / "models")
    publish(registry, model_with_a_hater())
    for user, rated in ((ALICE, CLUSTER_A[:2]), (BOB, CLUSTER_B[:2]), (DAN, NEUTRAL[:1])):
        for movie_id in rated:
            await storage.upsert_rating(user, movie_id, 5.0, None, rated_at=LONG_AGO)
    return make_service(storage, registry)


def ids(result) -> list[int]:  # type: ignore[no-untyped-def]
    return [p.movie.movie_id for p in result.picks]


async def test_each_member_is_served_as_recommend_serves_them(service: RecommenderService) -> None:
    await service.rate(CAROL, CLUSTER_B[2], 5.0)  # not in the model: folded in on the spot
    result = await service.group_picks([ALICE, BOB, CAROL, EVE])
    assert [(t.user_id, t.path) for t in result.members] == [
        (ALICE, ServingPath.TRAINED),
        (BOB, ServingPath.TRAINED),
        (CAROL, ServingPath.FOLD_IN),
        (EVE, ServingPath.POPULARITY),
    ]
    assert result.members[3].popularity_reason is PopularityReason.NO_RATINGS
    assert [t.n_ratings for t in result.members] == [2, 2, 1, 0]
    assert GroupReason.CROWD_VIEW in result.reasons
    assert result.model_version == "v1" and len(result.picks) == 3
    # every member's stars are the ones /predict gives them, in the members' order
    for pick in result.picks:
        for taste, stars in zip(result.members, pick.stars, strict=True):
            predicted = await service.predict(taste.user_id, pick.movie.movie_id)
            assert stars == pytest.approx(predicted.stars, abs=1e-4)


async def test_nothing_any_member_rated_or_hid_and_nothing_excluded(service: RecommenderService) -> None:
    await service.hide(BOB, CLUSTER_A[2])
    first = await service.group_picks([ALICE, BOB], k=5)
    blocked = {*CLUSTER_A[:2], *CLUSTER_B[:2], CLUSTER_A[2]}
    assert len(first.picks) == 5 and not blocked & set(ids(first))
    again = await service.group_picks([ALICE, BOB], k=5, exclude=ids(first))
    assert not set(ids(again)) & (set(ids(first)) | blocked) and len(again.picks) == 5
    # a rating made now is seen by the next pick (the cached list is checked against the database)
    await service.storage.upsert_rating(ALICE, ids(first)[0], 3.0, None)
    assert ids(first)[0] not in ids(await service.group_picks([ALICE, BOB], k=5))


async def test_a_movie_one_member_would_dislike_is_not_picked(service: RecommenderService) -> None:
    alone = await service.group_picks([ALICE, EVE], k=3)
    assert set(ids(alone)) <= set(CLUSTER_A)  # Alice's favourites, popular with the crowd too
    with_dan = await service.group_picks([ALICE, DAN], k=3)
    assert not set(ids(with_dan)) & set(CLUSTER_A)  # Dan is predicted under 3 stars for all of A
    dan = [taste.user_id for taste in with_dan.members].index(DAN)
    assert all(pick.stars[dan] >= 3.0 for pick in with_dan.picks)
    assert GroupReason.FLOOR_KEPT in with_dan.reasons and with_dan.floor == 3.0


async def test_a_folded_in_member_changes_the_pick(service: RecommenderService) -> None:
    """Cluster B is the least popular: picking it proves Carol's new ratings were folded in."""
    assert not set(ids(await service.group_picks([BOB, EVE]))) <= set(CLUSTER_B)
    for movie_id in CLUSTER_B[2:5]:
        await service.rate(CAROL, movie_id, 5.0)
    for movie_id in CLUSTER_A[:3]:
        await service.rate(CAROL, movie_id, 1.0)
    result = await service.group_picks([BOB, CAROL])
    assert result.members[1].path is ServingPath.FOLD_IN
    assert set(ids(result)) <= set(CLUSTER_B[5:])


async def test_filters_as_in_recommend(service: RecommenderService) -> None:
    comedies = await service.group_picks([ALICE, BOB], k=4, pick_filter=PickFilter("Comedy"))
    assert len(comedies.picks) == 4 and all("Comedy" in p.movie.genres for p in comedies.picks)
    nineties = await service.group_picks([ALICE, BOB], k=10, pick_filter=PickFilter(None, 1990, 1999))
    assert {p.movie.year for p in nineties.picks} <= set(range(1990, 2000))
    assert len(nineties.picks) == 7  # 1991-1999: nine movies, Alice rated two of them
    assert GroupReason.FEWER_THAN_K in nineties.reasons
    none = await service.group_picks([ALICE, BOB], pick_filter=PickFilter("Western"))
    assert none.picks == () and GroupReason.NO_CANDIDATES in none.reasons


async def test_a_member_whose_movies_the_model_lacks_counts_with_the_crowd(service, storage) -> None:
    await storage.upsert_rating(CAROL, 40, 4.0, None)  # the one catalogue movie the model lacks
    result = await service.group_picks([ALICE, CAROL])
    assert result.members[1].path is ServingPath.POPULARITY
    assert result.members[1].popularity_reason is PopularityReason.UNKNOWN_MOVIES
    assert GroupReason.CROWD_VIEW in result.reasons


async def test_without_a_model_everyone_has_the_crowds_view(storage: Storage, tmp_path: Path) -> None:
    service = make_service(storage, Registry(tmp_path / "empty"))
    assert service.model is None
    await storage.upsert_rating(ALICE, CLUSTER_A[0], 5.0, None)
    await storage.hide(BOB, CLUSTER_A[1])
    result = await service.group_picks([ALICE, BOB], k=3)
    assert ids(result) == CLUSTER_A[2:5]  # the most popular movies neither rated nor hid
    reasons = [t.popularity_reason for t in result.members]
    assert reasons == [PopularityReason.NO_MODEL, PopularityReason.NO_RATINGS]  # Bob only hid one
    assert all(len(set(p.stars)) == 1 for p in result.picks)  # the same crowd's stars for each
    assert result.reasons == (GroupReason.CROWD_VIEW,) and result.model_version is None


async def test_group_size_limits(service: RecommenderService) -> None:
    for bad, k in (([], 3), ([ALICE] * 2 + list(range(1, MAX_GROUP + 1)), 3), ([ALICE, BOB], 0)):
        with pytest.raises(InvalidGroup):
            await service.group_picks(bad, k)
    twenty = [ALICE, BOB, DAN, *range(1, MAX_GROUP - 2)]
    result = await service.group_picks([*twenty, ALICE])  # a repeated member counts once
    assert len(result.members) == MAX_GROUP and all(len(p.stars) == MAX_GROUP for p in result.picks)


async def test_an_admin_removing_a_movie_takes_it_out_of_group_picks(service: RecommenderService) -> None:
    added = await service.add_movie("Brand New Comedy", 2025, "Comedy", added_by=1)
    top = ids(await service.group_picks([ALICE, BOB], k=1, pick_filter=PickFilter("Comedy")))
    assert added.movie_id not in top  # not learned by the model: not a group pick
    service.catalog = Catalog([m for m in service.catalog.movies if m.movie_id != top[0]])
    after = ids(await service.group_picks([ALICE, BOB], k=1, pick_filter=PickFilter("Comedy")))
    assert after and after[0] != top[0]


async def test_per_member_stars_stay_on_the_scale(service: RecommenderService) -> None:
    result = await service.group_picks([ALICE, BOB, DAN, EVE], k=10)
    stars = np.array([p.stars for p in result.picks])
    assert stars.min() >= HALF.minimum and stars.max() <= HALF.maximum
