"""recommender/data/movielens.py and readers.py: each way a dataset can be bad, and the exact message
that says so."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from recommender.data import movielens as datasets
from recommender.data import readers
from recommender.data.movielens import load_movielens
from tests.recommender import movielens_fakes
from tests.recommender.movielens_fakes import (
    LOCAL,
    RETRY,
    TINY_MOVIES,
    TINY_RATINGS,
    cache_contents,
    load_error,
    mirror_with,
    write_csv_set,
    zip_folder,
)

# Fixtures shared with the other datasets test module.
tiny_csv = movielens_fakes.tiny_csv
http_mirror = movielens_fakes.http_mirror

SYMLINK = "is a symbolic link, which a MovieLens archive never holds; the archive was not extracted."
ESCAPES = "would be written outside the extraction folder; the archive is unsafe and was not extracted."


def test_corrupt_zip_is_rejected_and_never_cached(movielens_dir: Path, tmp_path: Path) -> None:
    good = bytearray((movielens_dir / "ml-100k.zip").read_bytes())
    middle = len(good) // 2
    good[middle : middle + 64] = bytes(64)  # damage compressed data, keep the central directory
    base, url = mirror_with(tmp_path, "ml-100k", bytes(good))
    cache = tmp_path / "cache"
    message = load_error("ml-100k", cache, base_url=base)
    assert re.fullmatch(
        re.escape(f"{url}: not a valid zip archive (")
        + r".+"
        + re.escape("); it is corrupt or truncated. " + RETRY.format(url=url)),
        message,
    ), message
    assert cache_contents(cache) == []  # no half-extracted folder, no temp download


def test_truncated_file_download_is_rejected(movielens_dir: Path, tmp_path: Path) -> None:
    whole = (movielens_dir / "ml-latest-small.zip").read_bytes()
    base, url = mirror_with(tmp_path, "ml-latest-small", whole[: len(whole) // 2])
    cache = tmp_path / "cache"
    message = load_error("ml-latest-small", cache, base_url=base)
    assert message == (
        f"{url}: not a valid zip archive (File is not a zip file); it is corrupt or truncated. "
        + RETRY.format(url=url)
    )
    assert cache_contents(cache) == []
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
    message = load_error("ml-100k", cache, base_url=base)
    assert message == (
        f"the download of {base}/ml-100k.zip was truncated: got {size // 2:,} of {size:,} bytes; "
        "nothing was cached: run again to retry."
    )
    assert cache_contents(cache) == []


def test_http_errors_say_what_failed(tmp_path: Path, http_mirror) -> None:
    base, _, _ = http_mirror
    message = load_error("ml-100k", tmp_path / "cache", base_url=base)
    assert message == (
        f"could not download {base}/ml-100k.zip: HTTP 404 File not found. Check MOVIELENS_MIRROR and the "
        "network, or set MOVIELENS_PATH to a local copy."
    )


def test_md5_mismatch_is_rejected(movielens_dir: Path, tmp_path: Path) -> None:
    base, url = mirror_with(tmp_path, "ml-100k", (movielens_dir / "ml-100k.zip").read_bytes())
    actual = hashlib.md5((movielens_dir / "ml-100k.zip").read_bytes()).hexdigest()
    (tmp_path / "mirror" / "ml-100k.zip.md5").write_text(f"{'0' * 32}  ml-100k.zip\n")
    cache = tmp_path / "cache"
    assert load_error("ml-100k", cache, base_url=base) == (
        f"{url}: MD5 {actual} does not match the published {'0' * 32}; the download is corrupt or not the "
        "official archive, and nothing was cached. Run again to retry, or use another MOVIELENS_MIRROR."
    )
    assert cache_contents(cache) == []
    (tmp_path / "mirror" / "ml-100k.zip.md5").write_text(f"{actual}  ml-100k.zip\n")  # GNU format
    assert len(load_movielens("ml-100k", cache_dir=cache, base_url=base, progress=False).ratings) == 100_000


def test_missing_file_in_folder_and_in_zip(movielens_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    shutil.copy(movielens_dir / "ml-100k" / "u.data", folder / "u.data")
    assert load_error("ml-100k", tmp_path / "cache", local_path=folder) == (
        f"{folder}: u.item missing (a ml-100k folder holds u.data and u.item). "
        + LOCAL.format(name="ml-100k")
    )
    base, url = mirror_with(
        tmp_path, "ml-100k", zip_folder(folder, tmp_path / "x.zip", "ml-100k").read_bytes()
    )
    assert load_error("ml-100k", tmp_path / "cache", base_url=base) == (
        f"{url}: the archive has no ml-100k/u.item (is it ml-100k?). " + RETRY.format(url=url)
    )
    assert cache_contents(tmp_path / "cache") == []


def test_wrong_columns(tmp_path: Path) -> None:
    folder = write_csv_set(tmp_path / "ml-25m", TINY_RATINGS.replace("rating,", "score,"), TINY_MOVIES)
    assert load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: expected the columns userId,movieId,rating,timestamp but the header is "
        "'userId,movieId,score,timestamp'; this is not a MovieLens ratings.csv file. "
        + LOCAL.format(name="ml-25m")
    )
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t7\t4\n")
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    assert load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.data'}: expected 4 fields per line but line 1 has 3 ('1\\t7\\t4'); this is not a "
        "MovieLens u.data file. " + LOCAL.format(name="ml-100k")
    )
    (ml100k / "u.data").write_text("1\t7\t4\t100\n1\t8\tfive\t101\n")
    message = load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False)
    assert message.startswith(f"{ml100k / 'u.data'}: could not parse the ratings (")
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995\n")
    assert load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.item'}: line 1: expected 24 fields, found 3; this is not a MovieLens u.item file. "
        + LOCAL.format(name="ml-100k")
    )


def test_rating_outside_the_scale(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)  # the bad row sits in the second chunk
    folder = write_csv_set(
        tmp_path / "ml-latest-small", TINY_RATINGS.replace("3,30,3.0", "3,30,7.0"), TINY_MOVIES
    )
    assert load_error("ml-latest-small", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: line 5: rating 7 is outside ml-latest-small's scale "
        "(0.5 to 5 in half stars); this is not a genuine ml-latest-small ratings file. "
        + LOCAL.format(name="ml-latest-small")
    )
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t7\t4\t100\n1\t7\t3.5\t101\n")  # ml-100k has whole stars only
    (ml100k / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    assert load_error("ml-100k", tmp_path / "cache", local_path=ml100k, strict_counts=False) == (
        f"{ml100k / 'u.data'}: line 2: rating 3.5 is outside ml-100k's scale (1 to 5 in whole stars); "
        "this is not a genuine ml-100k ratings file. " + LOCAL.format(name="ml-100k")
    )


def test_row_counts_from_the_readme_are_checked(tiny_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    tiny_csv.rename(folder)
    assert load_error("ml-latest-small", tmp_path / "cache", local_path=folder) == (
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
    folder = write_csv_set(tmp_path / "ml-25m", TINY_RATINGS, TINY_MOVIES + "20,Again (2000),Drama\n")
    assert load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'movies.csv'}: movie id 20 appears twice. " + LOCAL.format(name="ml-25m")
    )


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
    archive = zip_folder(tiny_csv, tmp_path / "ml-25m.zip", "ml-25m")
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo(member)
        if member.endswith("link"):
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(info, "pwned")
    base, url = mirror_with(tmp_path, "ml-25m", archive.read_bytes())
    cache = tmp_path / "deep" / "er" / "cache"
    assert load_error("ml-25m", cache, base_url=base, strict_counts=False) == (
        f"{url}: member {member!r} {why} " + RETRY.format(url=url)
    )
    assert cache_contents(cache) == []
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/evil.txt").exists()


def test_damaged_cache_says_how_to_recover(movielens_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_movielens("ml-100k", cache_dir=cache, base_url=f"file://{movielens_dir}", progress=False)
    (cache / "ml-100k" / "u.item").unlink()
    assert load_error("ml-100k", cache, base_url="file:///nonexistent") == (
        f"{cache / 'ml-100k'}: u.item missing (a ml-100k folder holds u.data and u.item). The cached copy is "
        f"damaged: delete {cache / 'ml-100k'} and run again to download it afresh."
    )


def test_unknown_dataset_and_missing_local_path(tmp_path: Path) -> None:
    assert load_error("ml-5m", tmp_path) == (
        "'ml-5m' is not a MovieLens dataset I know; use one of ml-100k, ml-1m, ml-20m, ml-25m, ml-32m, "
        "ml-latest, ml-latest-small"
    )
    assert load_error("ml-100k", tmp_path, local_path=tmp_path / "nope.zip") == (
        f"{tmp_path / 'nope.zip'} does not exist; set MOVIELENS_PATH to a ml-100k folder or zip."
    )


def test_unreadable_zip_from_a_local_path(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(b"not a zip at all")
    assert load_error("ml-100k", tmp_path / "cache", local_path=archive) == (
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
    assert load_error("ml-100k", cache, base_url="http://mirror.example") == (
        "the download of http://mirror.example/ml-100k.zip broke off after 1,048,576 bytes "
        "(ConnectionResetError: [Errno 104] Connection reset by peer); nothing was cached: "
        "run again to retry."
    )
    assert cache_contents(cache) == []


def test_ratings_for_movies_missing_from_the_movies_file(tmp_path: Path) -> None:
    folder = write_csv_set(tmp_path / "ml-25m", TINY_RATINGS + "5,99,4.0,1005\n5,98,1.0,1006\n", TINY_MOVIES)
    assert load_error("ml-25m", tmp_path / "cache", local_path=folder, strict_counts=False) == (
        f"{folder / 'ratings.csv'}: line 6: movie 99 is not in movies.csv "
        "(2 ratings are for unknown movies). " + LOCAL.format(name="ml-25m")
    )


def test_malformed_genre_list(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t7\t4\t100\n")
    (folder / "u.item").write_text("7|Film (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n")
    (folder / "u.genre").write_text("Action|one\n")
    assert load_error("ml-100k", tmp_path / "cache", local_path=folder, strict_counts=False) == (
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
    assert load_error("ml-100k", cache) == (
        f"{url}: MD5 {actual} does not match the published 0e33842e24a9c977be4e0107933c0723; the download "
        "is corrupt or not the official archive, and nothing was cached. Run again to retry, or use "
        "another MOVIELENS_MIRROR."
    )
    assert seen == [url, url + ".md5"]
    assert cache_contents(cache) == []
