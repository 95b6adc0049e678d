"""Catalog search and resolve: what autocomplete and typed titles need."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie
from recommender.serving.catalog import Catalog, display_name, fold

#: What the bot asks for: Discord takes 25 choices of at most 100 characters.
LIMIT, MAX_LEN = 25, 100


def find(catalog: Catalog, query: str) -> list[Movie]:
    return catalog.search(query, LIMIT, max_len=MAX_LEN)


MOVIES = [
    Movie(1, "The Godfather", 1972, ("Crime", "Drama")),
    Movie(2, "The Godfather: Part II", 1974, ("Crime", "Drama")),
    Movie(3, "The Thing", 1982, ("Horror",)),
    Movie(4, "The Thing", 2011, ("Horror",)),
    Movie(5, "Amélie", 2001, ("Comedy", "Romance")),
    Movie(6, "Alien", 1979, ("Horror", "Sci-Fi")),
    Movie(7, "Aliens", 1986, ("Action", "Sci-Fi")),
    Movie(8, "Star Wars: Episode IV - A New Hope", 1977, ("Sci-Fi",)),
    Movie(9, "Star Trek", 2009, ("Sci-Fi",)),
    Movie(10, "1917", 2019, ("War",)),
    Movie(11, "Solaris", 1972, ("Sci-Fi",)),
    Movie(12, "Solaris", 2002, ("Sci-Fi",)),
    Movie(13, "Léon: The Professional (a.k.a. The Professional)", 1994, ("Crime",)),
    Movie(14, "Things to Do in Denver When You're Dead", 1995, ("Crime",)),
    Movie(15, "Swamp Thing", 1982, ("Horror",)),
    Movie(16, "Toy Story", 1995, ("Animation",)),
]
# Rating counts: the sequels and remakes are deliberately not in id order.
POPULARITY = {
    1: 900,
    2: 700,
    3: 300,
    4: 100,
    5: 500,
    6: 400,
    7: 800,
    8: 1000,
    9: 200,
    10: 150,
    11: 20,
    12: 60,
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(MOVIES, POPULARITY)


def ids(movies: list[Movie]) -> list[int]:
    return [m.movie_id for m in movies]


def test_fold_drops_case_accents_and_punctuation() -> None:
    assert fold("  AMÉLIE: l’Été  ") == "amelie lete"
    assert fold("Schindler's List") == "schindlers list"
    assert fold("\x00\x07ctrl\r\n") == "ctrl"


def test_accent_and_case_insensitive(catalog: Catalog) -> None:
    for query in ("amelie", "AMELIE", "Amélie", "amél"):
        assert ids(find(catalog, query))[0] == 5, query


def test_typo(catalog: Catalog) -> None:
    assert ids(find(catalog, "godfahter"))[:2] == [1, 2]
    assert ids(find(catalog, "the godfahter"))[:2] == [1, 2]
    assert ids(find(catalog, "solaros"))[:2] == [12, 11]


def test_article_moved_to_the_end_or_front(catalog: Catalog) -> None:
    for query in ("thing, the", "the thing", "Thing, The", "thing"):
        assert ids(find(catalog, query))[:2] == [3, 4], query  # both remakes first, popular first


def test_year_disambiguates_remakes(catalog: Catalog) -> None:
    assert ids(find(catalog, "the thing 2011"))[0] == 4
    assert ids(find(catalog, "The Thing (2011)"))[0] == 4
    assert ids(find(catalog, "thing, the (1982)"))[0] == 3
    shown = [m.display for m in find(catalog, "the thing")]
    assert shown[:2] == ["The Thing (1982)", "The Thing (2011)"]  # display tells them apart


def test_exact_then_prefix_then_popularity(catalog: Catalog) -> None:
    # "Aliens" is more popular, but "Alien" is the exact match
    assert ids(find(catalog, "alien"))[:2] == [6, 7]
    # prefix matches, most popular first
    assert ids(find(catalog, "star"))[:2] == [8, 9]
    assert ids(find(catalog, "sta"))[:2] == [8, 9]
    # a word inside the title comes after prefixes but before fuzzy guesses
    found = ids(find(catalog, "thing"))
    assert found[:2] == [3, 4]
    assert set(found[2:4]) == {14, 15}


def test_popularity_breaks_fuzzy_ties() -> None:
    remakes = [Movie(1, "Solaris", 1972), Movie(2, "Solaris", 2002)]
    assert ids(Catalog(remakes, {1: 10, 2: 99}).search("solaros", LIMIT, max_len=MAX_LEN)) == [2, 1]
    assert ids(Catalog(remakes, {1: 99, 2: 10}).search("solaros", LIMIT, max_len=MAX_LEN)) == [1, 2]


def test_empty_query_returns_most_popular(catalog: Catalog) -> None:
    assert ids(find(catalog, ""))[:4] == [8, 1, 7, 2]
    assert ids(find(catalog, "   ")) == ids(find(catalog, ""))
    assert len(find(catalog, "")) == len(MOVIES)
    assert ids(catalog.search("", 3, max_len=MAX_LEN)) == [8, 1, 7]


def test_at_most_limit_results() -> None:
    many = Catalog([Movie(i, f"Star {i}", 2000) for i in range(1, 61)])
    assert len(many.search("star", LIMIT)) == 25
    assert len(many.search("star", 100)) == 60  # the caller's limit (Discord's 25 is the bot's)
    assert len(many.search("", LIMIT)) == 25
    assert len(many.search("star", 5)) == 5
    assert many.search("star", 0) == [] and many.search("star", -3) == []


def test_display_at_most_100_characters_keeping_the_year() -> None:
    long_title = "A Very Long Title " * 10
    movie = Movie(1, long_title.strip(), 1999)
    catalog = Catalog([movie, Movie(2, "Short", 2000)])
    (found,) = find(catalog, "a very long")
    assert len(found.display) <= MAX_LEN
    assert found.display.endswith("… (1999)")
    assert found.movie_id == 1
    assert catalog.get(1) == movie  # the catalog keeps the full title
    assert display_name(movie, MAX_LEN) == found.display
    assert display_name(Movie(3, "x" * 200), MAX_LEN) == "x" * 99 + "…"


def test_hostile_queries_return_quickly_without_error(catalog: Catalog) -> None:
    for query in (
        "x" * 5_000,
        "the godfather " * 400,
        "\x00\x01\x02\x1b[31m\r\n\t",
        "💥" * 300,
        "(((",
        ",",
        "'",
    ):
        found = find(catalog, query)
        assert isinstance(found, list) and len(found) <= 25
    assert ids(find(catalog, "\x00godfather\x07"))[0] == 1  # control characters are just separators
    assert find(catalog, None) == find(catalog, "")  # type: ignore[arg-type]


def test_resolve_by_id_title_year_and_title(catalog: Catalog) -> None:
    assert catalog.resolve("3").movie_id == 3  # what autocomplete sends back
    assert catalog.resolve(" 3 ").movie_id == 3
    assert catalog.resolve("The Thing (2011)").movie_id == 4
    assert catalog.resolve("thing, the (1982)").movie_id == 3
    assert catalog.resolve("AMELIE (2001)").movie_id == 5
    assert catalog.resolve("the godfather").movie_id == 1
    assert catalog.resolve("Godfather, The").movie_id == 1
    assert catalog.resolve("leon: the professional").movie_id == 13  # main title without the alias
    assert catalog.resolve("The Professional").movie_id == 13  # the alternative title alone
    assert catalog.resolve("1917").movie_id == 10  # no movie has id 1917, so it is a title


def test_resolve_ambiguous_title_suggests_the_remakes(catalog: Catalog) -> None:
    with pytest.raises(UnknownMovie) as info:
        catalog.resolve("The Thing")
    assert ids(info.value.suggestions) == [3, 4]
    assert "The Thing (1982)" in str(info.value) and "The Thing (2011)" in str(info.value)


def test_resolve_unknown_gives_up_to_five_suggestions(catalog: Catalog) -> None:
    with pytest.raises(UnknownMovie) as info:
        catalog.resolve("godfahter")
    assert 1 <= len(info.value.suggestions) <= 5
    assert info.value.suggestions[0].movie_id == 1
    with pytest.raises(UnknownMovie):
        catalog.resolve("99999")
    with pytest.raises(UnknownMovie) as info:
        catalog.resolve("")
    assert info.value.suggestions == []
    with pytest.raises(UnknownMovie):
        catalog.resolve("zzzzqqqq")


def test_get_len_and_duplicates() -> None:
    catalog = Catalog([*MOVIES, MOVIES[0]], POPULARITY)
    assert len(catalog) == len(MOVIES)
    assert catalog.get(3) == MOVIES[2]
    assert catalog.get(12345) is None
    assert 3 in catalog


def test_real_movielens_titles(movielens_dir: Path, tmp_path: Path) -> None:
    from recommender.data.movielens import load_movielens
    from recommender.data.popularity import bayesian_popularity

    data = load_movielens(
        "ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small", progress=False
    )
    movies = [
        Movie(int(r.movie_id), r.title, None if pd.isna(r.year) else int(r.year), tuple(r.genres))
        for r in data.movies.itertuples()
    ]
    counts = bayesian_popularity(data.ratings)["count"].to_dict()
    catalog = Catalog(movies, counts)
    assert [m.display for m in find(catalog, "thing, the")[:2]] == ["The Thing (1982)", "The Thing (2011)"]
    assert find(catalog, "godfahter")[0].display == "The Godfather (1972)"
    assert find(catalog, "amelie")[0].movie_id == 4973
    assert find(catalog, "star wa")[0].display == "Star Wars: Episode IV - A New Hope (1977)"
    assert catalog.resolve("Amelie (2001)").movie_id == 4973
    assert all(len(m.display) <= MAX_LEN for q in ("", "the", "a", "love") for m in find(catalog, q))

    # "Did you mean": words that appear in no title ("episode 9", "fellowship" misspelt) still get
    # the closest whole titles; gibberish and control characters get no guesses at all.
    def suggested(text: str) -> list[str]:
        with pytest.raises(UnknownMovie) as info:
            catalog.resolve(text)
        return [m.display for m in info.value.suggestions]

    assert suggested("Star Warz Episode 9")[0] == "Star Wars: Episode IV - A New Hope (1977)"
    assert suggested("lord of the rigns fellowship") == [
        "The Lord of the Rings: The Fellowship of the Ring (2001)"
    ]
    assert suggested("termnator 2 judgment") == ["Terminator 2: Judgment Day (1991)"]
    assert suggested("matrx reloded") == ["The Matrix Reloaded (2003)"]
    assert suggested("zzzz qqqq") == suggested("asdfgh") == suggested("\x00\x01") == []
    assert suggested("amelie from montmartre")[0] == "Amelie (Le Fabuleux destin d'Amélie Poulain) (2001)"


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=300), limit=st.integers(min_value=-5, max_value=60))
def test_any_query_respects_the_caps(query: str, limit: int) -> None:
    found = _PROPERTY_CATALOG.search(query, limit, max_len=MAX_LEN)
    assert len(found) <= max(0, limit)
    assert all(len(m.display) <= MAX_LEN for m in found)
    assert len({m.movie_id for m in found}) == len(found)  # no movie twice


_PROPERTY_CATALOG = Catalog(
    [*MOVIES, *(Movie(100 + i, f"Star {'x' * (i * 7)} Voyage", 1950 + i) for i in range(30))], POPULARITY
)
