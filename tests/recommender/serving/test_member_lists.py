"""The service behind the member's loop: filters and pages, hidden movies excluded everywhere,
watchlist, /unrate, /import through real storage, and the catalogue's import lookup."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.data.imports import RejectCode
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import AmbiguousTitle, Catalog
from recommender.serving.contract import ImportRefused, PickFilter, ServingPath
from recommender.serving.service import RecommenderService

from .service_fakes import CLUSTER_A, CLUSTER_B, HALF, NEUTRAL, make_model, movies, popularity, publish

ALICE = 111_111_111_111_111_111


@pytest.fixture
async def service(tmp_path: Path):
    storage = await Storage(tmp_path / "bot.sqlite3").open()
    await storage.load_catalog("ml-latest-small", movies(), popularity())
    registry = Registry(tmp_path / "models")
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[2] for m, p in popularity().items()}),
        registry,
        HALF,
        popularity=popularity(),
        reload_check_seconds=3600.0,
    )
    yield service
    await service.close()
    await storage.close()


def ids(picks) -> list[int]:
    return [p.movie.movie_id for p in picks]


async def test_filters_and_pages_on_the_popularity_path(service):
    first = await service.recommend(ALICE, 5)
    assert ids(first.picks) == CLUSTER_A[:5]
    second = await service.recommend(ALICE, 5, skip=5)
    assert ids(second.picks) == CLUSTER_A[5:10]
    drama = await service.recommend(ALICE, 5, filters=PickFilter(genre="Drama"))
    assert set(ids(drama.picks)) <= set(CLUSTER_B) | {40} and len(drama.picks) == 5
    years = await service.recommend(ALICE, 50, filters=PickFilter(year_from=2005, year_to=2009))
    assert sorted(ids(years.picks)) == [15, 16, 17, 18, 19]  # movie m is from 1990 + m


async def test_filters_and_hidden_on_the_personal_path(service):
    publish(
        service.registry, make_model("v1", trained_members={ALICE: CLUSTER_A}, trained_at=time.time() + 60)
    )
    service.reload_model()
    await service.storage.upsert_rating(ALICE, CLUSTER_A[0], 5.0, None, rated_at=time.time() - 60)
    assert (await service.recommend(ALICE)).path is ServingPath.TRAINED
    assert await service.hide(ALICE, CLUSTER_A[1]) is True
    assert await service.hide(ALICE, CLUSTER_A[1]) is False
    picks = ids((await service.recommend(ALICE, 5)).picks)
    assert CLUSTER_A[1] not in picks and CLUSTER_A[0] not in picks
    comedy = ids((await service.recommend(ALICE, 5, filters=PickFilter(genre="Comedy"))).picks)
    assert len(comedy) == 5 and set(comedy) <= set(NEUTRAL)  # found below the top of the ranking
    paged = ids((await service.recommend(ALICE, 5, skip=5)).picks)
    assert not set(paged) & set(picks)
    similar = ids(await service.similar(CLUSTER_A[2], 5, user_id=ALICE))
    assert CLUSTER_A[1] not in similar and len(similar) == 5
    assert CLUSTER_A[1] in ids(await service.similar(CLUSTER_A[2], 9))  # hidden only for her
    assert [m.movie_id for m in await service.hidden(ALICE)] == [CLUSTER_A[1]]
    assert await service.unhide(ALICE, CLUSTER_A[1]) is True
    assert CLUSTER_A[1] in ids((await service.recommend(ALICE, 5)).picks)


async def test_watchlist_and_unrate(service):
    assert await service.add_to_watchlist(ALICE, 3) and await service.add_to_watchlist(
        ALICE,
        4,
    )
    assert not await service.add_to_watchlist(ALICE, 3)
    assert [m.movie_id for m in await service.watchlist(ALICE)] == [4, 3]
    assert await service.remove_from_watchlist(ALICE, 3) and not await service.remove_from_watchlist(ALICE, 3)
    with pytest.raises(UnknownMovie):
        await service.add_to_watchlist(ALICE, 999)
    await service.rate(ALICE, 3, 4.0)
    assert (await service.unrate(ALICE, 3)).movie_id == 3
    assert await service.unrate(ALICE, 3) is None
    assert await service.ratings(ALICE) == []


async def test_import_stores_in_one_go_and_a_refused_file_writes_nothing(service):
    data = b"movieId,rating,timestamp\n1,4.5,1500000000\n11,2,1500000001\n999,3,1500000002\n"
    summary = await service.import_ratings(ALICE, data, 7)
    assert (summary.matched, summary.inserted, summary.unmatched, summary.n_ratings) == (2, 2, 1, 2)
    assert b"unknown_movie" in summary.unmatched_csv
    again = await service.import_ratings(ALICE, data, 7)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    stored = await service.storage.user_ratings(ALICE)
    assert {(r.movie_id, r.stars, r.guild_id) for r in stored} == {(1, 4.5, 7), (11, 2.0, 7)}
    with pytest.raises(ImportRefused) as info:
        await service.import_ratings(ALICE, b"<html><body>login</body></html>")
    assert info.value.code is RejectCode.HTML
    assert len(await service.storage.user_ratings(ALICE)) == 2


def test_lookup_for_imports_never_suggests_and_takes_a_year_one_off():
    catalog = Catalog(
        [
            Movie(1, "Heat", 1995),
            Movie(2, "The Thing", 1982),
            Movie(3, "The Thing", 2011),
            Movie(4, "Solaris", None),
        ]
    )
    catalog.suggest = None  # type: ignore[assignment]  # lookup must never reach it
    assert catalog.lookup("Heat", 1995).movie_id == 1
    assert catalog.lookup("heat", 1996).movie_id == 1  # unique title, a year off
    assert catalog.lookup("Heat", 1997) is None
    assert catalog.lookup("Heat (1995)").movie_id == 1
    assert catalog.lookup("The Thing", 1982).movie_id == 2
    assert catalog.lookup("Thing, The", 2011).movie_id == 3
    assert catalog.lookup("The Thing", 1983) is None  # remakes: only the exact year picks one
    assert catalog.lookup("The Thing") is None
    assert catalog.lookup("Solaris", 1972).movie_id == 4  # no year to contradict
    assert catalog.lookup("Heta", 1995) is None and catalog.lookup("", None) is None
    with pytest.raises(AmbiguousTitle) as info:
        catalog.resolve("the thing")
    assert [m.year for m in info.value.suggestions] == [1982, 2011]
    assert isinstance(info.value, UnknownMovie)
