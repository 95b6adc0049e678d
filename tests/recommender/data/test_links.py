"""links.csv: IMDb and TMDB ids on the movies frame and on Movie, from the real and synthetic sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.core.types import DATASETS, HALF, Movie
from recommender.data.movielens import DatasetError, load_movielens, movies_from_frame
from tests.recommender import movielens_fakes
from tests.recommender.movielens_fakes import LOCAL, assert_normal_form, load_error, movie_row

tiny_csv = movielens_fakes.tiny_csv


def test_ml_latest_small_has_every_links_row(movielens_dir: Path, tmp_path: Path) -> None:
    data = load_movielens("ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small")
    assert_normal_form(data)
    toy = movie_row(data, 1)
    assert (toy["title"], toy["imdb_id"], toy["tmdb_id"]) == ("Toy Story", 114709, 862)  # "0114709"
    assert movie_row(data, 2288)["imdb_id"] == 84787  # The Thing (1982) is tt0084787
    # links.csv leaves tmdbId blank for 8 movies: unknown, never 0.
    assert movie_row(data, 791) == {**movie_row(data, 791), "imdb_id": 113610, "tmdb_id": None}
    assert int(data.movies["imdb_id"].notna().sum()) == 9_742
    assert int(data.movies["tmdb_id"].isna().sum()) == 8
    assert data.movies["imdb_id"].is_unique


def test_the_zip_gives_the_same_links_as_the_folder(movielens_dir: Path, tmp_path: Path) -> None:
    name = "ml-latest-small"
    folder = load_movielens(name, cache_dir=tmp_path / "a", local_path=movielens_dir / name)
    archive = load_movielens(name, cache_dir=tmp_path / "b", local_path=movielens_dir / f"{name}.zip")
    pd.testing.assert_frame_equal(folder.movies, archive.movies)


def test_ml100k_has_no_ids(movielens_dir: Path, tmp_path: Path) -> None:
    # u.item's fifth field is an IMDb *title search* URL ("title-exact?Toy%20Story%20(1995)" or
    # "Title?..."), never a tt id, so there is nothing to read.
    urls = [
        line.split("|")[4]
        for line in (movielens_dir / "ml-100k" / "u.item").read_text("latin-1").splitlines()
    ]
    assert not any("/tt" in u or "title/tt" in u for u in urls)
    assert sum("title-exact" in u or "Title?" in u for u in urls) == 1_679  # 3 are blank
    data = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k")
    assert_normal_form(data)
    assert data.movies["imdb_id"].isna().all() and data.movies["tmdb_id"].isna().all()
    assert movies_from_frame(data.movies)[0] == Movie(
        1, "Toy Story", 1995, ("Animation", "Children's", "Comedy")
    )


def test_synthetic_links_and_movies_from_frame(tiny_csv: Path, tmp_path: Path) -> None:
    (tiny_csv / "links.csv").write_text("movieId,imdbId,tmdbId\r\n10,0084787,1091\r\n30,0318871,\r\n")
    data = load_movielens("ml-25m", cache_dir=tmp_path / "cache", local_path=tiny_csv, strict_counts=False)
    assert_normal_form(data)
    assert data.movies["imdb_id"].tolist() == [84787, pd.NA, 318871]  # movie 20 has no row: unknown
    assert data.movies["tmdb_id"].tolist() == [1091, pd.NA, pd.NA]
    assert movies_from_frame(data.movies) == [
        Movie(10, "The Thing", 1982, ("Action", "Horror", "Sci-Fi"), imdb_id=84787, tmdb_id=1091),
        Movie(20, "Seven (a.k.a. Se7en)", 1995, ("Mystery", "Thriller")),
        Movie(30, "Black Mirror", None, (), imdb_id=318871),
    ]


def test_a_folder_without_links_csv_still_loads(tiny_csv: Path, tmp_path: Path) -> None:
    data = load_movielens("ml-25m", cache_dir=tmp_path / "cache", local_path=tiny_csv, strict_counts=False)
    assert_normal_form(data)
    assert data.movies["imdb_id"].isna().all()


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        (
            "movieId,imdb,tmdbId\n10,1,2\n",
            "{path}: expected the columns movieId,imdbId,tmdbId but the header is 'movieId,imdb,tmdbId'; "
            "this is not a MovieLens links.csv file. ",
        ),
        (
            "movieId,imdbId,tmdbId\n10,1,2\n99,3,4\n",
            "{path}: movie 99 is not in movies.csv (1 links are for unknown movies); the files are from "
            "different releases. ",
        ),
        ("movieId,imdbId,tmdbId\n10,1,2\n10,3,4\n", "{path}: movie id 10 appears twice. "),
    ],
)
def test_bad_links_are_refused(tiny_csv: Path, tmp_path: Path, links: str, expected: str) -> None:
    path = tiny_csv / "links.csv"
    path.write_text(links)
    message = load_error("ml-25m", tmp_path / "cache", local_path=tiny_csv, strict_counts=False)
    assert message == expected.format(path=path) + LOCAL.format(name="ml-25m")


def test_links_that_are_not_numbers_are_refused(tiny_csv: Path, tmp_path: Path) -> None:
    path = tiny_csv / "links.csv"
    path.write_text("movieId,imdbId,tmdbId\n10,tt0084787,2\n")
    with pytest.raises(DatasetError, match=r"links\.csv: could not parse the links \("):
        load_movielens("ml-25m", cache_dir=tmp_path / "cache", local_path=tiny_csv, strict_counts=False)


def test_ml32m_is_known_with_its_readme_counts(tiny_csv: Path, tmp_path: Path) -> None:
    info = DATASETS["ml-32m"]
    assert (info.scale, info.n_ratings, info.n_users, info.n_movies) == (HALF, 32_000_204, 200_948, 87_585)
    folder = tmp_path / "ml-32m"
    tiny_csv.rename(folder)
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n10,84787,1091\n")
    data = load_movielens("ml-32m", cache_dir=tmp_path / "cache", local_path=folder, strict_counts=False)
    assert (len(data.ratings), movie_row(data, 10)["imdb_id"]) == (4, 84787)
    # With the README's counts enforced, a 4-rating folder is not ml-32m.
    assert load_error("ml-32m", tmp_path / "cache", local_path=folder).startswith(
        f"{folder}: found 4 ratings but the ml-32m README states 32,000,204;"
    )
