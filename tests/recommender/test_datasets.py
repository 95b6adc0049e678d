"""recommender/datasets.py against the offline MovieLens copies and small bad archives built here."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import shutil
import stat
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from recommender import datasets, fetch
from recommender.config import Settings
from recommender.datasets import DatasetError, MovieLensData, load_from_settings, load_movielens, parse_title

NAMES = ["ml-100k", "ml-latest-small"]
EXPECTED = {"ml-100k": (100_000, 943, 1_682), "ml-latest-small": (100_836, 610, 9_742)}


# --------------------------------------------------------------------------------------------- helpers


def _raw_ratings(movielens_dir: Path, name: str) -> np.ndarray:
    """The ratings file parsed naively with the standard library, as an independent reference."""
    if name == "ml-100k":
        lines = (movielens_dir / name / "u.data").read_text().splitlines()
        rows = [line.split("\t") for line in lines]
    else:
        rows = [
            line.split(",") for line in (movielens_dir / name / "ratings.csv").read_text().splitlines()[1:]
        ]
    return np.array([[float(v) for v in row] for row in rows])


def _assert_normal_form(data: MovieLensData) -> None:
    assert data.ratings.dtypes.astype(str).to_dict() == {
        "user_id": "int32",
        "movie_id": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    assert list(data.movies.columns) == ["movie_id", "title", "year", "genres"]
    assert str(data.movies["movie_id"].dtype) == "int32"
    assert str(data.movies["year"].dtype) == "Int64"
    assert all(isinstance(g, tuple) for g in data.movies["genres"])


def _movie(data: MovieLensData, movie_id: int) -> dict:
    row = data.movies[data.movies["movie_id"] == movie_id]
    assert len(row) == 1, f"movie {movie_id} not found once"
    found = row.iloc[0].to_dict()
    found["year"] = None if pd.isna(found["year"]) else int(found["year"])
    return found


def _cache_contents(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _zip_folder(folder: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}/{path.name}")
    return archive


def _write_csv_set(folder: Path, ratings: str, movies: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    (folder / "movies.csv").write_text(movies, encoding="utf-8")
    return folder


TINY_RATINGS = "userId,movieId,rating,timestamp\n1,10,4.5,1000\n2,10,0.5,1001\n1,20,5.0,1002\n3,30,3.0,1003\n"
TINY_MOVIES = (
    "movieId,title,genres\n"
    '10,"Thing, The (1982)",Action|Horror|Sci-Fi\n'
    "20,Seven (a.k.a. Se7en) (1995),Mystery|Thriller\n"
    "30,Black Mirror,(no genres listed)\n"
)


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    return _write_csv_set(tmp_path / "ml-25m", TINY_RATINGS, TINY_MOVIES)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any urlopen call fails the test: proves a load used only the cache or a local copy."""
    calls: list[str] = []

    def refuse(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(getattr(url, "full_url", url)))
        raise AssertionError(f"unexpected network access: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set[str] = set()  # noqa: RUF012 - set per server below

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        if name in self.truncate:  # claim the full length, send half, hang up
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[tuple[str, Path, set[str]]]:
    """A loopback HTTP server over a folder: (base URL, folder, names to send truncated)."""
    root = tmp_path / "http"
    root.mkdir()
    truncate: set[str] = set()
    handler = type("Handler", (_Handler,), {"truncate": truncate})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **kw: handler(*a, directory=str(root), **kw)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, truncate
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------------- sources & parsing


@pytest.mark.parametrize("name", NAMES)
def test_local_folder_gives_normal_form_in_file_order(movielens_dir: Path, tmp_path: Path, name: str) -> None:
    data = load_movielens(name, cache_dir=tmp_path / "cache", local_path=movielens_dir / name)

    assert data.path == movielens_dir / name
    assert not (tmp_path / "cache").exists()  # a folder is read in place, never copied
    _assert_normal_form(data)
    assert (len(data.ratings), data.ratings["user_id"].nunique(), len(data.movies)) == EXPECTED[name]
    raw = _raw_ratings(movielens_dir, name)
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
    assert _cache_contents(cache) == [name]  # no temp files or staging folders left behind
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
    archive = _zip_folder(tiny_csv, tmp_path / "a.zip", "ml-25m")
    assert (
        len(load_movielens("ml-25m", cache_dir=cache, local_path=archive, strict_counts=False).ratings) == 4
    )
    (tiny_csv / "ratings.csv").write_text(TINY_RATINGS + "4,30,2.0,1004\n")
    archive2 = _zip_folder(tiny_csv, tmp_path / "b.zip", "ml-25m")
    data = load_movielens("ml-25m", cache_dir=cache, local_path=archive2, strict_counts=False)
    assert len(data.ratings) == 5
    assert _cache_contents(cache) == ["ml-25m"]


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
    assert _cache_contents(cache) == [name]
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
    assert _movie(ml100k, 543)["title"] == "Les Misérables"
    small = load_movielens(
        "ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small"
    )
    assert _movie(small, 29)["title"] == "The City of Lost Children (La Cité des enfants perdus)"
    assert _movie(small, 6009)["title"] == "The City of Lost Souls (Hyôryuu-gai)"


def test_movies_from_the_real_files(movielens_dir: Path, tmp_path: Path) -> None:
    ml100k = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k")
    toy = _movie(ml100k, 1)
    assert (toy["title"], toy["year"], toy["genres"]) == (
        "Toy Story",
        1995,
        ("Animation", "Children's", "Comedy"),
    )
    unknown = _movie(ml100k, 267)  # no year anywhere, and only the "unknown" genre flag
    assert (unknown["title"], unknown["year"], unknown["genres"]) == ("unknown", None, ())
    assert _movie(ml100k, 1412)["title"] == "Land Before Time III: The Time of the Great Giving"

    small = load_movielens(
        "ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small"
    )
    thing = _movie(small, 2288)
    assert (thing["title"], thing["year"]) == ("The Thing", 1982)
    assert _movie(small, 47)["title"] == "Seven (a.k.a. Se7en)"
    no_genres = _movie(small, 171749)  # "Death Note: Desu nôto (2006–2007)", "(no genres listed)"
    assert (no_genres["title"], no_genres["year"], no_genres["genres"]) == ("Death Note: Desu nôto", 2006, ())
    assert _movie(small, 40697)["year"] is None  # "Babylon 5": no year in the file


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
    _assert_normal_form(data)
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
    monkeypatch.setattr(datasets, "CHUNK_ROWS", 3)  # 4 rows -> two chunks: order must survive
    data = load_movielens("ml-25m", cache_dir=tmp_path / "cache", local_path=tiny_csv, strict_counts=False)
    _assert_normal_form(data)
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
    assert _movie(data, 7) == {"movie_id": 7, "title": "Mystery Film", "year": 1995, "genres": ("Comedy",)}


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


# ------------------------------------------------------------------------------------------ errors

RETRY = "Nothing was cached; run again to retry, or use another source for {url}."
LOCAL = "Point MOVIELENS_PATH at a complete {name} folder or zip."


def _mirror_with(tmp_path: Path, name: str, payload: bytes) -> tuple[str, str]:
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / f"{name}.zip").write_bytes(payload)
    return f"file://{mirror}", f"file://{mirror}/{name}.zip"


def _load_error(name: str, cache: Path, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as err:
        load_movielens(name, cache_dir=cache, progress=False, **kwargs)
    return str(err.value)


def test_corrupt_zip_is_rejected_and_never_cached(movielens_dir: Path, tmp_path: Path) -> None:
    good = bytearray((movielens_dir / "ml-100k.zip").read_bytes())
    middle = len(good) // 2
    good[middle : middle + 64] = bytes(64)  # damage compressed data, keep the central directory
    base, url = _mirror_with(tmp_path, "ml-100k", bytes(good))
    cache = tmp_path / "cache"
    message = _load_error("ml-100k", cache, base_url=base)
    assert re.fullmatch(
        re.escape(f"{url}: not a valid zip archive (")
        + r".+"
        + re.escape("); it is corrupt or truncated. " + RETRY.format(url=url)),
        message,
    ), message
    assert _cache_contents(cache) == []  # no half-extracted folder, no temp download


def test_truncated_file_download_is_rejected(movielens_dir: Path, tmp_path: Path) -> None:
    whole = (movielens_dir / "ml-latest-small.zip").read_bytes()
    base, url = _mirror_with(tmp_path, "ml-latest-small", whole[: len(whole) // 2])
    cache = tmp_path / "cache"
    message = _load_error("ml-latest-small", cache, base_url=base)
    assert message == (
        f"{url}: not a valid zip archive (File is not a zip file); it is corrupt or truncated. "
        + RETRY.format(url=url)
    )
    assert _cache_contents(cache) == []
    # The good archive then loads: the failure left nothing behind that would block a retry.
    (tmp_path / "mirror" / "ml-latest-small.zip").write_bytes(whole)
    assert (
        len(load_movielens("ml-latest-small", cache_dir=cache, base_url=base, progress=False).ratings)
        == 100_836
    )


def test_truncated_http_download_is_rejected(movielens_dir: Path, tmp_path: Path, http_mirror) -> None:
    base, root, truncate = http_mirror
    shutil.copy(movielens_dir / "ml-100k.zip", root / "ml-100k.zip")
    truncate.add("ml-100k.zip")
    size = (root / "ml-100k.zip").stat().st_size
    cache = tmp_path / "cache"
    message = _load_error("ml-100k", cache, base_url=base)
    assert message == (
        f"the download of {base}/ml-100k.zip was truncated: got {size // 2:,} of {size:,} bytes; "
        "nothing was cached: run again to retry."
    )
    assert _cache_contents(cache) == []


def test_http_errors_say_what_failed(tmp_path: Path, http_mirror) -> None:
    base, _, _ = http_mirror
    message = _load_error("ml-100k", tmp_path / "cache", base_url=base)
    assert message == (
        f"could not download {base}/ml-100k.zip: HTTP 404 File not found. Check MOVIELENS_MIRROR and the "
        "network, or set MOVIELENS_PATH to a local copy."
    )


def test_md5_mismatch_is_rejected(movielens_dir: Path, tmp_path: Path) -> None:
    base, url = _mirror_with(tmp_path, "ml-100k", (movielens_dir / "ml-100k.zip").read_bytes())
    actual = hashlib.md5((movielens_dir / "ml-100k.zip").read_bytes()).hexdigest()
    (tmp_path / "mirror" / "ml-100k.zip.md5").write_text(f"{'0' * 32}  ml-100k.zip\n")
    cache = tmp_path / "cache"
    assert _load_error("ml-100k", cache, base_url=base) == (
        f"{url}: MD5 {actual} does not match the published {'0' * 32}; the download is corrupt or not the "
        "official archive, and nothing was cached. Run again to retry, or use another MOVIELENS_MIRROR."
    )
    assert _cache_contents(cache) == []
    (tmp_path / "mirror" / "ml-100k.zip.md5").write_text(f"{actual}  ml-100k.zip\n")  # GNU format
    assert len(load_movielens("ml-100k", cache_dir=cache, base_url=base, progress=False).ratings) == 100_000


def test_missing_file_in_folder_and_in_zip(movielens_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    shutil.copy(movielens_dir / "ml-100k" / "u.data", folder / "u.data")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=folder) == (
        f"{folder}: u.item missing (a ml-100k folder holds u.data and u.item). "
        + LOCAL.format(name="ml-100k")
    )
    base, url = _mirror_with(
        tmp_path, "ml-100k", _zip_folder(folder, tmp_path / "x.zip", "ml-100k").read_bytes()
    )
    assert _load_error("ml-100k", tmp_path / "cache", base_url=base) == (
        f"{url}: the archive has no ml-100k/u.item (is it ml-100k?). " + RETRY.format(url=url)
    )
    assert _cache_contents(tmp_path / "cache") == []


def test_wrong_columns(tmp_path: Path) -> None:
    folder = _write_csv_set(tmp_path / "ml-25m", TINY_RATINGS.replace("rating,", "score,"), TINY_MOVIES)
    assert _load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: expected the columns userId,movieId,rating,timestamp but the header is "
        "'userId,movieId,score,timestamp'; this is not a MovieLens ratings.csv file. "
        + LOCAL.format(name="ml-25m")
    )
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t7\t4\n")
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.data'}: expected 4 fields per line but line 1 has 3 ('1\\t7\\t4'); this is not a "
        "MovieLens u.data file. " + LOCAL.format(name="ml-100k")
    )
    (ml100k / "u.data").write_text("1\t7\t4\t100\n1\t8\tfive\t101\n")
    message = _load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False)
    assert message.startswith(f"{ml100k / 'u.data'}: could not parse the ratings (")
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995\n")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.item'}: line 1: expected 24 fields, found 3; this is not a MovieLens u.item file. "
        + LOCAL.format(name="ml-100k")
    )


def test_rating_outside_the_scale(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "CHUNK_ROWS", 2)  # the bad row sits in the second chunk
    folder = _write_csv_set(
        tmp_path / "ml-latest-small", TINY_RATINGS.replace("3,30,3.0", "3,30,7.0"), TINY_MOVIES
    )
    assert _load_error("ml-latest-small", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: line 5: rating 7 is outside ml-latest-small's scale "
        "(0.5 to 5 in half stars); this is not a genuine ml-latest-small ratings file. "
        + LOCAL.format(name="ml-latest-small")
    )
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t7\t4\t100\n1\t7\t3.5\t101\n")  # ml-100k has whole stars only
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.data'}: line 2: rating 3.5 is outside ml-100k's scale (1 to 5 in whole stars); "
        "this is not a genuine ml-100k ratings file. " + LOCAL.format(name="ml-100k")
    )


def test_row_counts_from_the_readme_are_checked(tiny_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    tiny_csv.rename(folder)
    assert _load_error("ml-latest-small", tmp_path / "cache", local_path=folder) == (
        f"{folder}: found 4 ratings but the ml-latest-small README states 100,836; the copy is incomplete "
        "or from another release. " + LOCAL.format(name="ml-latest-small")
    )
    assert (
        len(
            load_movielens(
                "ml-latest-small", cache_dir=tmp_path, local_path=folder, strict_counts=False
            ).ratings
        )
        == 4
    )


def test_duplicate_movie_ids(tmp_path: Path) -> None:
    folder = _write_csv_set(tmp_path / "ml-25m", TINY_RATINGS, TINY_MOVIES + "20,Again (2000),Drama\n")
    assert _load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'movies.csv'}: movie id 20 appears twice. " + LOCAL.format(name="ml-25m")
    )


SYMLINK = "is a symbolic link, which a MovieLens archive never holds; the archive was not extracted."
ESCAPES = "would be written outside the extraction folder; the archive is unsafe and was not extracted."


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil.txt", ESCAPES),
        ("ml-25m/../../evil.txt", ESCAPES),
        ("/tmp/evil.txt", ESCAPES),
        ("ml-25m/link", SYMLINK),
    ],
)  # fmt: skip
def test_unsafe_zip_members_are_rejected(tiny_csv: Path, tmp_path: Path, member: str, why: str) -> None:
    archive = _zip_folder(tiny_csv, tmp_path / "ml-25m.zip", "ml-25m")
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo(member)
        if member.endswith("link"):
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(info, "pwned")
    base, url = _mirror_with(tmp_path, "ml-25m", archive.read_bytes())
    cache = tmp_path / "deep" / "er" / "cache"
    assert _load_error("ml-25m", cache, base_url=base, strict_counts=False) == (
        f"{url}: member {member!r} {why} " + RETRY.format(url=url)
    )
    assert _cache_contents(cache) == []
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/evil.txt").exists()


def test_damaged_cache_says_how_to_recover(movielens_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_movielens("ml-100k", cache_dir=cache, base_url=f"file://{movielens_dir}", progress=False)
    (cache / "ml-100k" / "u.item").unlink()
    assert _load_error("ml-100k", cache, base_url="file:///nonexistent") == (
        f"{cache / 'ml-100k'}: u.item missing (a ml-100k folder holds u.data and u.item). The cached copy is "
        f"damaged: delete {cache / 'ml-100k'} and run again to download it afresh."
    )


def test_unknown_dataset_and_missing_local_path(tmp_path: Path) -> None:
    assert _load_error("ml-5m", tmp_path) == (
        "'ml-5m' is not a MovieLens dataset I know; use one of ml-100k, ml-1m, ml-20m, ml-25m, ml-latest, "
        "ml-latest-small"
    )
    assert _load_error("ml-100k", tmp_path, local_path=tmp_path / "nope.zip") == (
        f"{tmp_path / 'nope.zip'} does not exist; set MOVIELENS_PATH to a ml-100k folder or zip."
    )


def test_unreadable_zip_from_a_local_path(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(b"not a zip at all")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=archive) == (
        f"{archive}: not a valid zip archive (File is not a zip file); it is corrupt or truncated. "
        "Point MOVIELENS_PATH at a good copy of ml-100k, or unset it to download from GroupLens."
    )
    assert not (tmp_path / "cache" / "ml-100k").exists()
    assert os.listdir(tmp_path / "cache") == []


def test_connection_lost_mid_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Dropping(io.BytesIO):
        headers: ClassVar[dict[str, str]] = {"Content-Length": "3000000"}

        def read(self, size: int = -1) -> bytes:
            if self.tell() >= 1 << 20:
                raise ConnectionResetError(104, "Connection reset by peer")
            return super().read(size)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Dropping(bytes(3_000_000)))
    cache = tmp_path / "cache"
    assert _load_error("ml-100k", cache, base_url="http://mirror.example") == (
        "the download of http://mirror.example/ml-100k.zip broke off after 1,048,576 bytes "
        "(ConnectionResetError: [Errno 104] Connection reset by peer); nothing was cached: "
        "run again to retry."
    )
    assert _cache_contents(cache) == []


def test_ratings_for_movies_missing_from_the_movies_file(tmp_path: Path) -> None:
    folder = _write_csv_set(tmp_path / "ml-25m", TINY_RATINGS + "5,99,4.0,1005\n5,98,1.0,1006\n", TINY_MOVIES)
    assert _load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: line 6: movie 99 is not in movies.csv "
        "(2 ratings are for unknown movies). " + LOCAL.format(name="ml-25m")
    )


def test_malformed_genre_list(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t7\t4\t100\n")
    (folder / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    (folder / "u.genre").write_text("Action|one\n")
    assert _load_error("ml-100k", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'u.genre'}: expected lines of 'genre|number'. " + LOCAL.format(name="ml-100k")
    )


def test_grouplens_downloads_fall_back_to_the_known_md5(
    movielens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From GroupLens itself, a missing .md5 is no excuse: the known official MD5 is checked."""
    local_zip = (movielens_dir / "ml-100k.zip").read_bytes()  # re-packed: not GroupLens's bytes
    seen: list[str] = []

    def fake_grouplens(url: str, timeout: float):  # type: ignore[no-untyped-def]
        seen.append(url)
        if url.endswith(".md5"):
            raise urllib.error.HTTPError(url, 503, "Service Unavailable", {}, None)  # type: ignore[arg-type]
        response = io.BytesIO(local_zip)
        response.headers = {"Content-Length": str(len(local_zip))}  # type: ignore[attr-defined]
        return response

    monkeypatch.setattr(urllib.request, "urlopen", fake_grouplens)
    url = f"{datasets.GROUPLENS}/ml-100k.zip"
    actual = hashlib.md5(local_zip).hexdigest()
    cache = tmp_path / "cache"
    assert _load_error("ml-100k", cache) == (
        f"{url}: MD5 {actual} does not match the published 0e33842e24a9c977be4e0107933c0723; the download "
        "is corrupt or not the official archive, and nothing was cached. Run again to retry, or use "
        "another MOVIELENS_MIRROR."
    )
    assert seen == [url, url + ".md5"]
    assert _cache_contents(cache) == []
