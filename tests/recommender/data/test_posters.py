"""The TMDB poster client against a real HTTP server on 127.0.0.1: posters, every failure as None
(never an exception, never the key in a log line), the cache, the request bound, and "off"."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

import bot.__main__ as cli
from recommender.core.config import ConfigError, Secret, Settings
from recommender.core.types import Movie
from recommender.data.posters import PosterClient, is_bearer_token
from recommender.pipeline.worker import child_env

KEY = "v3key0123456789abcdef"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJlLXBhcnQ"
IMAGES = "http://images.test/t/p/w342"


@dataclass
class Tmdb:
    """A stand-in for ``api.themoviedb.org/3``: movie id -> how it answers."""

    url: str = ""
    answers: dict[int, str] = field(default_factory=dict)  # "ok", "401", "404", "slow", ...
    delay: float = 0.0
    requests: list[web.Request] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def movie(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            movie_id = int(request.match_info["movie_id"])
            answer = self.answers.get(movie_id, "ok")
            if answer == "slow" or self.delay:
                await asyncio.sleep(self.delay or 1.0)  # past the tests' 0.3 s timeout
            if answer in {"401", "404", "500"}:
                return web.json_response({"status_message": "nope"}, status=int(answer))
            if answer == "bad_json":
                return web.Response(text="<html>not json", content_type="application/json")
            if answer == "no_poster":
                return web.json_response({"id": movie_id, "poster_path": None})
            if answer == "odd_path":
                return web.json_response({"id": movie_id, "poster_path": "javascript:alert(1)"})
            if answer == "list":
                return web.json_response([1, 2, 3])
            return web.json_response({"id": movie_id, "poster_path": f"/poster{movie_id}.jpg"})
        finally:
            self.in_flight -= 1


@pytest.fixture
async def tmdb() -> AsyncIterator[Tmdb]:
    fake = Tmdb()
    app = web.Application()
    app.router.add_get("/3/movie/{movie_id}", fake.movie)
    runner = web.AppRunner(app, access_log=None)  # the server's own log is not the client's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}/3"
    yield fake
    await runner.cleanup()


def client(tmdb: Tmdb, key: str = KEY, **kwargs: object) -> PosterClient:
    return PosterClient(Secret(key), api_url=tmdb.url, image_url=IMAGES, **kwargs)


def assert_key_never_logged(caplog: pytest.LogCaptureFixture, *keys: str) -> None:
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for key in keys:
        assert key not in text
    assert "api_key" not in text and "127.0.0.1" not in text  # nor the URL the key rides on


async def test_a_poster_url_comes_back_with_the_key_as_a_v3_parameter(tmdb):
    async with client(tmdb) as posters:
        assert await posters.poster_url(862) == f"{IMAGES}/poster862.jpg"
    [request] = tmdb.requests
    assert request.path == "/3/movie/862" and request.query["api_key"] == KEY
    assert "Authorization" not in request.headers


async def test_a_v4_read_token_is_sent_as_a_bearer_header_not_in_the_url(tmdb):
    assert is_bearer_token(JWT) and not is_bearer_token(KEY)
    async with client(tmdb, JWT) as posters:
        assert await posters.poster_url(603) == f"{IMAGES}/poster603.jpg"
    [request] = tmdb.requests
    assert request.headers["Authorization"] == f"Bearer {JWT}" and "api_key" not in request.query


@pytest.mark.parametrize("answer", ["401", "404", "500", "bad_json", "no_poster", "odd_path", "list", "slow"])
async def test_every_failure_is_none_with_one_log_line_and_no_key(tmdb, caplog, answer):
    tmdb.answers[5] = answer
    caplog.set_level(logging.DEBUG, logger="recommender.data.posters")
    async with client(tmdb, timeout=0.3) as posters:
        started = asyncio.get_running_loop().time()
        assert await posters.poster_url(5) is None
        assert asyncio.get_running_loop().time() - started < 1.5  # the timeout bounds a slow answer
    records = [r for r in caplog.records if r.name == "recommender.data.posters"]
    assert len(records) == 1 and "movie 5" in records[0].getMessage()
    assert_key_never_logged(caplog, KEY)


async def test_a_failure_with_a_bearer_token_never_logs_it_either(tmdb, caplog):
    tmdb.answers[5] = "401"
    caplog.set_level(logging.DEBUG)
    async with client(tmdb, JWT) as posters:
        assert await posters.poster_url(5) is None
    assert "HTTP 401" in caplog.text
    assert_key_never_logged(caplog, JWT)


async def test_a_server_that_is_not_there_gives_none(tmdb, caplog):
    caplog.set_level(logging.DEBUG)
    gone = PosterClient(Secret(KEY), api_url="http://127.0.0.1:9/3", image_url=IMAGES, timeout=1.0)
    async with gone:
        assert await gone.poster_url(862) is None
    assert "movie 862" in caplog.text
    assert_key_never_logged(caplog, KEY)


async def test_the_cache_answers_again_without_a_request_until_it_expires(tmdb):
    now = [1000.0]
    tmdb.answers[7] = "no_poster"
    async with client(tmdb, ttl=100.0, missing_ttl=50.0, clock=lambda: now[0]) as posters:
        assert await posters.poster_url(862) == f"{IMAGES}/poster862.jpg"
        assert await posters.poster_url(7) is None
        assert await posters.poster_url(862) == f"{IMAGES}/poster862.jpg"
        assert await posters.poster_url(7) is None  # "no poster" is remembered too
        assert len(tmdb.requests) == 2 and posters.requests == 2
        now[0] += 60  # past the negative answer's expiry, not the poster's
        assert await posters.poster_url(7) is None
        assert await posters.poster_url(862) == f"{IMAGES}/poster862.jpg"
        assert len(tmdb.requests) == 3
        now[0] += 60
        await posters.poster_url(862)
        assert len(tmdb.requests) == 4


async def test_the_cache_is_bounded_and_forgets_the_least_recently_used(tmdb):
    async with client(tmdb, cache_size=2) as posters:
        for movie in (1, 2, 1, 3):  # 1 was used again, so 2 goes when 3 comes
            await posters.poster_url(movie)
        assert len(tmdb.requests) == 3
        await posters.poster_url(1)
        assert len(tmdb.requests) == 3
        await posters.poster_url(2)
        assert len(tmdb.requests) == 4


async def test_at_most_n_requests_in_flight_and_one_per_movie(tmdb):
    tmdb.delay = 0.1
    async with client(tmdb, max_in_flight=2) as posters:
        urls = await asyncio.gather(*(posters.poster_url(m) for m in (1, 2, 3, 4, 5, 6, 1, 1)))
    assert urls == [f"{IMAGES}/poster{m}.jpg" for m in (1, 2, 3, 4, 5, 6, 1, 1)]
    assert tmdb.most_in_flight == 2
    assert len(tmdb.requests) == 6  # three asks for movie 1 shared one request


async def test_no_request_at_all_without_a_key(tmdb):
    async with client(tmdb, key="") as posters:
        assert not posters.enabled
        assert await posters.poster_url(862) is None
        assert posters._session is None  # not even a connection pool
    assert tmdb.requests == [] and posters.requests == 0


async def test_bad_ids_ask_nothing(tmdb):
    async with client(tmdb) as posters:
        for bad in (0, -3):
            assert await posters.poster_url(bad) is None
    assert tmdb.requests == []


# ------------------------------------------------------------------------ settings and wiring


def test_settings_default_to_off_and_keep_the_key_secret():
    off = Settings.from_env({})
    assert not off.tmdb_api_key
    assert off.tmdb_api_url == "https://api.themoviedb.org/3"
    assert off.tmdb_image_url == "https://image.tmdb.org/t/p/w342"
    on = Settings.from_env({"TMDB_API_KEY": KEY, "TMDB_API_URL": "http://127.0.0.1:1/3/"})
    assert on.tmdb_api_key.get() == KEY and on.tmdb_api_url == "http://127.0.0.1:1/3"
    assert KEY not in repr(on) and KEY not in str(on)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TMDB_API_URL": "ftp://x"}, "TMDB_API_URL must be an http(s):// URL"),
        ({"TMDB_IMAGE_URL": "images"}, "TMDB_IMAGE_URL must be an http(s):// URL"),
        ({"TMDB_API_KEY": "abc def"}, "TMDB_API_KEY contains spaces"),
    ],
)
def test_bad_tmdb_settings_are_refused_clearly(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Settings.from_env(env)
    assert "abc def" not in str(info.value)


def test_the_trainer_never_gets_the_tmdb_key(tmp_path: Path):
    env = child_env(Settings(data_dir=tmp_path), {"TMDB_API_KEY": KEY, "PATH": "/bin"})
    assert "TMDB_API_KEY" not in env and KEY not in env.values()


async def test_open_service_wires_the_client_from_settings(tmdb, tmp_path):
    on = Settings(data_dir=tmp_path, tmdb_api_key=Secret(KEY), tmdb_api_url=tmdb.url, tmdb_image_url=IMAGES)
    async with cli.open_service(on, worker=None) as service:
        assert await service.poster(Movie(1, "Toy Story", 1995, tmdb_id=862)) == f"{IMAGES}/poster862.jpg"
        assert await service.poster(Movie(2, "No links", 2001)) is None  # no TMDB id: nothing asked
    assert len(tmdb.requests) == 1

    off = Settings(data_dir=tmp_path, tmdb_api_url=tmdb.url)
    async with cli.open_service(off, worker=None) as service:
        assert await service.poster(Movie(1, "Toy Story", 1995, tmdb_id=862)) is None
    assert len(tmdb.requests) == 1
