"""The dataset switch's map, on the real offline copies and on a synthetic newer release."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recommender.core.types import Movie
from recommender.data.movielens import load_movielens
from recommender.data.readers import movies_from_frame
from recommender.data.remap import MatchKind, build_remap, segment_keys, shares_ids, title_keys


@pytest.fixture(scope="module")
def catalogues(movielens_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Movie]]:
    cache = tmp_path_factory.mktemp("cache")
    return {
        name: movies_from_frame(
            load_movielens(name, cache_dir=cache, local_path=movielens_dir / name, progress=False).movies
        )
        for name in ("ml-100k", "ml-latest-small")
    }


def _by_id(movies: list[Movie]) -> dict[int, Movie]:
    return {m.movie_id: m for m in movies}


def test_title_keys_fold_articles_accents_aliases_and_parts():
    assert title_keys("The Double Life of Veronique (La Double Vie de Véronique)")[:2] == [
        "double life of veronique la double vie de veronique",
        "double life of veronique",
    ]
    assert "withnail and i" in title_keys("Withnail & I")
    assert "langoliers" in title_keys("Stephen King's The Langoliers")
    assert "wife" not in title_keys("The Rich Man's Wife")  # no name before the 's: kept whole
    assert segment_keys("Star Wars: Episode IV - A New Hope") == ["star wars", "episode iv", "new hope"]


def test_ml100k_to_ml_latest_small_maps_by_title_and_year(catalogues):
    old, new = catalogues["ml-100k"], catalogues["ml-latest-small"]
    remap = build_remap(old, new, old_dataset="ml-100k", new_dataset="ml-latest-small")
    assert not shares_ids("ml-100k", "ml-latest-small") and not remap.ids_trusted
    # no links.csv in ml-100k and unrelated ids: everything found is found by title and year
    assert remap.counts["id"] == remap.counts["imdb"] == 0
    assert remap.counts["title_year"] + remap.counts["unmapped"] == len(old) == 1682
    assert remap.counts["title_year"] >= 1300  # ml-latest-small lacks many obscure 1990s films
    new_by_id = _by_id(new)
    expected = {
        1: "Toy Story",  # ml-100k id 1, ml-latest-small id 1: a coincidence, found by title
        2: "GoldenEye",  # ml-100k id 2 is GoldenEye; ml-latest-small's id 2 is Jumanji
        50: "Star Wars: Episode IV - A New Hope",  # the title spelled longer in the newer release
        172: "Star Wars: Episode V - The Empire Strikes Back",
        127: "The Godfather",
    }
    for old_id, title in expected.items():
        assert new_by_id[remap.new_id(old_id)].title == title, old_id
    # every match agrees on the year to one, and one title key
    old_by_id = _by_id(old)
    for old_id, match in remap.matches.items():
        a, b = old_by_id[old_id], new_by_id[match.new_id]
        assert a.year is None or abs(a.year - b.year) <= 1, (a, b)
    # Emma (1996) is in ml-latest-small twice: ambiguous, so unmapped rather than guessed
    emma = next(m for m in old if m.title == "Emma" and m.year == 1996)
    assert emma in remap.unmapped


def test_ml_latest_small_to_a_newer_release_carries_checked_ids(catalogues):
    old = catalogues["ml-latest-small"]
    by_id = _by_id(old)
    renumbered = by_id[1]  # the new release moved Toy Story to another id (IMDb id unchanged)
    reused = by_id[2]  # and reused Jumanji's id for another film
    dropped = by_id[3]
    new = [m for m in old if m.movie_id not in (1, 2, 3)]
    new += [
        dataclasses.replace(renumbered, movie_id=300_001),
        Movie(2, "Some Other Film", 2021, ("Drama",), imdb_id=99_999_999),
        dataclasses.replace(reused, movie_id=300_002, imdb_id=None),  # Jumanji, no link: by title + year
        Movie(300_003, "A Film From 2023", 2023, ("Comedy",), imdb_id=88_888_888),
    ]
    remap = build_remap(old, new, old_dataset="ml-latest-small", new_dataset="ml-32m")
    agreeing, sampled = remap.sample  # id 2, reused for another film, may be in the sample
    assert remap.ids_trusted and sampled > 0 and agreeing >= sampled - 1
    assert remap.matches[1].new_id == 300_001 and remap.matches[1].kind is MatchKind.IMDB
    assert remap.matches[2].new_id == 300_002 and remap.matches[2].kind is MatchKind.TITLE_YEAR
    assert [m.movie_id for m in remap.unmapped] == [dropped.movie_id]
    assert remap.counts["id"] == len(old) - 3
    assert remap.mapping()[260] == 260


def test_shared_ids_are_not_trusted_when_the_sample_disagrees(catalogues):
    old = catalogues["ml-latest-small"]
    # the same ids naming other films throughout: a "latest" name on a differently numbered set
    shuffled = [dataclasses.replace(m, title=f"Unrelated {m.movie_id}", imdb_id=None) for m in old]
    remap = build_remap(old, shuffled, old_dataset="ml-latest-small", new_dataset="ml-25m")
    assert not remap.ids_trusted and remap.counts["id"] == 0
    assert remap.counts["unmapped"] == len(old)
