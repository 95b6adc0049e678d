"""recommender/data/movielens.py and readers.py: every source kind, the cache, the normal form and
title parsing (offline)."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.core.config import Settings
from recommender.data import fetch, readers
from recommender.data import movielens as datasets
from recommender.data.movielens import DatasetError, load_from_settings, load_movielens, parse_title
from tests.recommender import movielens_fakes
from tests.recommender.movielens_fakes import (
    EXPECTED,
    NAMES,
    TINY_RATINGS,
    assert_normal_form,
    cache_contents,
    movie_row,
    raw_ratings,
    zip_folder,
)

# Fixtures shared with the other datasets test module.
tiny_csv = movielens_fakes.tiny_csv
http_mirror = movielens_fakes.http_mirror


# ----------------------------------------------------------------------------------- sources & parsing


@pytest.mark.parametrize("name", NAMES)
def test_local_folder_gives_normal_form_in_file_order(movielens_dir: Path, tmp_path: Path, name: str) -> None:
    data = load_movielens(name, cache_dir=tmp_path / "cache", local_path=movielens_dir / name)

    assert data.path == movielens_dir / name
    assert not (tmp_path / "cache").exists()  # a folder is read in place, never copied
    assert_normal_form(data)
    assert (len(data.ratings), data.ratings["user_id"].nunique(), len(data.movies)) == EXPECTED[name]
    raw = raw_ratings(movielens_dir, name)
    # Row i is line i of the file: the ml-100k canonical folds are consecutive 20,000-line blocks.
    np.testing.assert_array_equal(data.ratings.to_numpy(dtype=float), raw)
    assert data.scale == data.info.scale
    assert data.scale.maximum == 5.0 and data.scale.step == (1.0 if name == "ml-100k" else 0.5)


@pytest.mark.parametrize("name", NAMES)
def test_local_zip_is_extracted_into_cache_and_reused(
    movielens_dir: Path, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_movielens(name, cache_dir=cache, local_path=movielens_dir / f"{name}.zip")
    assert first.path == cache / name
    assert cache_contents(cache) == [name]  # no temp files or staging folders left behind
    reference = load_movielens(name, cache_dir=cache, local_path=movielens_dir / name)
    pd.testing.assert_frame_equal(first.ratings, reference.ratings)
    pd.testing.assert_frame_equal(first.movies, reference.movies)

    def no_extract(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached copy should have been used")

    monkeypatch.setattr(fetch, "safe_extract", no_extract)
    again = load_movielens(name, cache_dir=cache, local_path=movielens_dir / f"{name}.zip")
    pd.testing.assert_frame_equal(again.ratings, first.ratings)


def test_a_different_local_zip_replaces_the_cached_copy(tmp_path: Path, tiny_csv: Path) -> None:
    cache = tmp_path / "cache"
    archive = zip_folder(tiny_csv, tmp_path / "a.zip", "ml-25m")
    assert (
        len(load_movielens("ml-25m", cache_dir=cache, local_path=archive, strict_counts=False).ratings) == 4
    )
    (tiny_csv / "ratings.csv").write_text(TINY_RATINGS + "4,30,2.0,1004\n")
    archive2 = zip_folder(tiny_csv, tmp_path / "b.zip", "ml-25m")
    data = load_movielens("ml-25m", cache_dir=cache, local_path=archive2, strict_counts=False)
    assert len(data.ratings) == 5
    assert cache_contents(cache) == ["ml-25m"]


def test_a_parent_folder_is_searched_for_the_dataset(movielens_dir: Path, tmp_path: Path) -> None:
    # MOVIELENS_PATH may point at ../shared/data/movielens itself: its ml-100k/ folder is used...
    data = load_movielens("ml-100k", cache_dir=tmp_path / "a", local_path=movielens_dir)
    assert data.path == movielens_dir / "ml-100k"
    assert len(data.ratings) == 100_000
    # ...and a folder holding only the archive uses <name>.zip, extracted into the cache.
    archives = tmp_path / "archives"
    archives.mkdir()
    shutil.copy(movielens_dir / "ml-latest-small.zip", archives)
    data = load_movielens("ml-latest-small", cache_dir=tmp_path / "b", local_path=archives)
    assert data.path == tmp_path / "b" / "ml-latest-small"
    assert len(data.ratings) == 100_836


@pytest.mark.parametrize("name", NAMES)
def test_file_mirror_downloads_verifies_caches_then_stays_offline(
    movielens_dir: Path, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    # The local zips are not GroupLens's, and this mirror publishes no .md5: that must be accepted.
    data = load_movielens(name, cache_dir=cache, base_url=f"file://{movielens_dir}/", progress=False)
    assert data.path == cache / name
    assert cache_contents(cache) == [name]
    assert (len(data.ratings), data.ratings["user_id"].nunique(), len(data.movies)) == EXPECTED[name]

    calls: list[str] = []

    def refuse(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(url))
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    for base in ("file:///nonexistent/mirror", datasets.GROUPLENS):
        again = load_movielens(name, cache_dir=cache, base_url=base)
        pd.testing.assert_frame_equal(again.ratings, data.ratings)
        pd.testing.assert_frame_equal(again.movies, data.movies)
    assert calls == []


def test_http_mirror_with_matching_md5_is_accepted(movielens_dir: Path, tmp_path: Path, http_mirror) -> None:
    base, root, _ = http_mirror
    shutil.copy(movielens_dir / "ml-100k.zip", root / "ml-100k.zip")
    digest = hashlib.md5((root / "ml-100k.zip").read_bytes()).hexdigest()
    (root / "ml-100k.zip.md5").write_text(f"MD5 (ml-100k.zip) = {digest}\n")  # GroupLens's BSD format
    data = load_movielens("ml-100k", cache_dir=tmp_path / "cache", base_url=base, progress=False)
    assert len(data.ratings) == 100_000


def test_progress_bar_is_drawn_on_a_terminal(movielens_dir: Path, tmp_path: Path, monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for progress, expect in ((False, False), (True, True)):
        fake = Tty()
        monkeypatch.setattr(sys, "stderr", fake)
        cache = tmp_path / f"cache-{progress}"
        load_movielens("ml-100k", cache_dir=cache, base_url=f"file://{movielens_dir}", progress=progress)
        assert ("ml-100k.zip" in fake.getvalue()) is expect
        assert ("100%" in fake.getvalue()) is expect


def test_encodings(movielens_dir: Path, tmp_path: Path) -> None:
    ml100k = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k")
    with pytest.raises(UnicodeDecodeError):  # u.item really is latin-1, so decoding matters
        (movielens_dir / "ml-100k" / "u.item").read_text("utf-8")
    assert movie_row(ml100k, 543)["title"] == "Les Misérables"
    small = load_movielens(
        "ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small"
    )
    assert movie_row(small, 29)["title"] == "The City of Lost Children (La Cité des enfants perdus)"
    assert movie_row(small, 6009)["title"] == "The City of Lost Souls (Hyôryuu-gai)"


def test_movies_from_the_real_files(movielens_dir: Path, tmp_path: Path) -> None:
    ml100k = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k")
    toy = movie_row(ml100k, 1)
    assert (toy["title"], toy["year"], toy["genres"]) == (
        "Toy Story",
        1995,
        ("Animation", "Children's", "Comedy"),
    )
    unknown = movie_row(ml100k, 267)  # no year anywhere, and only the "unknown" genre flag
    assert (unknown["title"], unknown["year"], unknown["genres"]) == ("unknown", None, ())
    assert movie_row(ml100k, 1412)["title"] == "Land Before Time III: The Time of the Great Giving"

    small = load_movielens(
        "ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small"
    )
    thing = movie_row(small, 2288)
    assert (thing["title"], thing["year"]) == ("The Thing", 1982)
    assert movie_row(small, 47)["title"] == "Seven (a.k.a. Se7en)"
    no_genres = movie_row(small, 171749)  # "Death Note: Desu nôto (2006–2007)", "(no genres listed)"
    assert (no_genres["title"], no_genres["year"], no_genres["genres"]) == ("Death Note: Desu nôto", 2006, ())
    assert movie_row(small, 40697)["year"] is None  # "Babylon 5": no year in the file


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Thing, The (1982)", "The Thing", 1982),
        ("Seven (a.k.a. Se7en) (1995)", "Seven (a.k.a. Se7en)", 1995),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children (La Cité des enfants perdus)",
            1995,
        ),
        ("Good, the Bad and the Ugly, The (1966)", "The Good, the Bad and the Ugly", 1966),
        (
            "Affair of Love, An (Liaison pornographique, Une) (1999)",
            "An Affair of Love (Une Liaison pornographique)",
            1999,
        ),
        ("Atalante, L' (1934)", "L'Atalante", 1934),
        ("Boot, Das (Boat, The) (1981)", "Das Boot (The Boat)", 1981),
        ("Misérables, Les (1995)", "Les Misérables", 1995),
        ("Babylon 5", "Babylon 5", None),
        ("Hyena Road", "Hyena Road", None),
        ("Heidi Fleiss: Hollywood Madam (1995) ", "Heidi Fleiss: Hollywood Madam", 1995),
        ("  Two Friends   (1986)  ", "Two Friends", 1986),
        ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto", 2006),
        ("Some Show (2006-2007)", "Some Show", 2006),
        (
            "Land Before Time III: The Time of the Great Giving (1995) (V)",
            "Land Before Time III: The Time of the Great Giving",
            1995,
        ),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
        ("I, Robot (2004)", "I, Robot", 2004),
        ("1984 (1984)", "1984", 1984),
        ("Brother, Can You Spare a Dime? (1975)", "Brother, Can You Spare a Dime?", 1975),
    ],
)  # fmt: skip
def test_parse_title(raw: str, title: str, year: int | None) -> None:
    assert parse_title(raw) == (title, year)


def test_ml1m_style_dat_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Misérables, Les (1995)::Drama|Musical\n"
        "3::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n".encode("latin-1")
    )
    (folder / "ratings.dat").write_text("1::3::5::978300760\n2::1::3::978302109\n1::2::4::978301968\n")
    data = load_movielens("ml-1m", cache_dir=tmp_path / "cache", local_path=folder, strict_counts=False)
    assert_normal_form(data)
    assert data.ratings.to_numpy().tolist() == [
        [1, 3, 5, 978300760],
        [2, 1, 3, 978302109],
        [1, 2, 4, 978301968],
    ]
    assert data.movies["title"].tolist() == [
        "Toy Story",
        "Les Misérables",
        "Star Wars: Episode IV - A New Hope",
    ]
    assert data.movies["genres"].tolist() == [
        ("Animation", "Children's", "Comedy"),
        ("Drama", "Musical"),
        ("Action", "Sci-Fi"),
    ]


def test_ml25m_style_csv_folder_read_in_chunks(tiny_csv: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 3)  # 4 rows -> two chunks: order must survive
    data = load_movielens("ml-25m", cache_dir=tmp_path / "cache", local_path=tiny_csv, strict_counts=False)
    assert_normal_form(data)
    assert data.ratings.to_numpy().tolist() == [
        [1, 10, 4.5, 1000],
        [2, 10, 0.5, 1001],
        [1, 20, 5.0, 1002],
        [3, 30, 3.0, 1003],
    ]
    assert data.movies["title"].tolist() == ["The Thing", "Seven (a.k.a. Se7en)", "Black Mirror"]
    assert data.movies["year"].tolist() == [1982, 1995, pd.NA]
    assert data.movies["genres"].tolist() == [("Action", "Horror", "Sci-Fi"), ("Mystery", "Thriller"), ()]


def test_ml100k_year_falls_back_to_release_date(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    flags = "|".join(["0"] * 5 + ["1"] + ["0"] * 13)  # the sixth flag is Comedy
    (folder / "u.item").write_bytes(f"7|Mystery Film|01-Jan-1995||http://x|{flags}\n".encode("latin-1"))
    (folder / "u.data").write_text("1\t7\t4\t881250949\n")
    data = load_movielens("ml-100k", cache_dir=tmp_path / "cache", local_path=folder, strict_counts=False)
    assert movie_row(data, 7) == {
        "movie_id": 7, "title": "Mystery Film", "year": 1995, "genres": ("Comedy",),
        "imdb_id": None, "tmdb_id": None,  # the "IMDb URL" column (x here) is never read as an id
    }  # fmt: skip


# --------------------------------------------------------------------------------------- settings


def test_load_from_settings_picks_path_then_mirror_then_grouplens(
    movielens_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    bad_mirror = "file:///nonexistent/mirror"
    by_path = Settings(data_dir=tmp_path / "a", movielens_dataset="ml-100k", movielens_mirror=bad_mirror,
                       movielens_path=movielens_dir / "ml-100k.zip")  # fmt: skip
    assert load_from_settings(by_path, progress=False).path == tmp_path / "a" / "datasets" / "ml-100k"

    by_mirror = Settings(
        data_dir=tmp_path / "b", movielens_dataset="ml-100k", movielens_mirror=f"file://{movielens_dir}"
    )
    assert load_from_settings(by_mirror, progress=False).path == tmp_path / "b" / "datasets" / "ml-100k"

    seen: list[str] = []

    def offline(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError) as err:
        load_from_settings(Settings(data_dir=tmp_path / "c"), progress=False)
    url = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
    assert seen == [url]
    assert str(err.value) == (
        f"could not download {url}: offline. Check MOVIELENS_MIRROR and the network, "
        "or set MOVIELENS_PATH to a local copy."
    )
    assert not (tmp_path / "c" / "datasets" / "ml-latest-small").exists()
