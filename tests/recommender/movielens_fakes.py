"""Helpers and fixtures shared by the datasets tests: tiny MovieLens-style folders, archives, a mirror."""

from __future__ import annotations

import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.movielens import DatasetError, MovieLensData, load_movielens

NAMES = ["ml-100k", "ml-latest-small"]
EXPECTED = {"ml-100k": (100_000, 943, 1_682), "ml-latest-small": (100_836, 610, 9_742)}


# --------------------------------------------------------------------------------------------- helpers


def raw_ratings(movielens_dir: Path, name: str) -> np.ndarray:
    """The ratings file parsed naively with the standard library, as an independent reference."""
    if name == "ml-100k":
        lines = (movielens_dir / name / "u.data").read_text().splitlines()
        rows = [line.split("\t") for line in lines]
    else:
        rows = [
            line.split(",") for line in (movielens_dir / name / "ratings.csv").read_text().splitlines()[1:]
        ]
    return np.array([[float(v) for v in row] for row in rows])


def assert_normal_form(data: MovieLensData) -> None:
    assert data.ratings.dtypes.astype(str).to_dict() == {
        "user_id": "int32",
        "movie_id": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    assert list(data.movies.columns) == ["movie_id", "title", "year", "genres", "imdb_id", "tmdb_id"]
    assert str(data.movies["movie_id"].dtype) == "int32"
    assert str(data.movies["year"].dtype) == "Int64"
    assert str(data.movies["imdb_id"].dtype) == "Int64"
    assert str(data.movies["tmdb_id"].dtype) == "Int64"
    assert all(isinstance(g, tuple) for g in data.movies["genres"])


def movie_row(data: MovieLensData, movie_id: int) -> dict:
    row = data.movies[data.movies["movie_id"] == movie_id]
    assert len(row) == 1, f"movie {movie_id} not found once"
    found = row.iloc[0].to_dict()
    for key in ("year", "imdb_id", "tmdb_id"):
        found[key] = None if pd.isna(found[key]) else int(found[key])
    return found


def cache_contents(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def zip_folder(folder: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}/{path.name}")
    return archive


def write_csv_set(folder: Path, ratings: str, movies: str) -> Path:
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
    return write_csv_set(tmp_path / "ml-25m", TINY_RATINGS, TINY_MOVIES)


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


RETRY = "Nothing was cached; run again to retry, or use another source for {url}."
LOCAL = "Point MOVIELENS_PATH at a complete {name} folder or zip."


def mirror_with(tmp_path: Path, name: str, payload: bytes) -> tuple[str, str]:
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / f"{name}.zip").write_bytes(payload)
    return f"file://{mirror}", f"file://{mirror}/{name}.zip"


def load_error(name: str, cache: Path, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as err:
        load_movielens(name, cache_dir=cache, progress=False, **kwargs)
    return str(err.value)
