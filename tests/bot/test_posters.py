"""Posters as embed thumbnails, driven through discord.py (simcord) over the fake service: shown
when the service has one, absent when it has none, and asked for only after the reply is deferred."""

from __future__ import annotations

from tests.bot.fakes import MOVIES

POSTER = "https://image.tmdb.org/t/p/w342/matrix.jpg"


def callbacks(env) -> int:
    return sum(1 for r in env.http_requests if r.path.endswith("/callback"))


async def test_predict_shows_the_poster_as_the_thumbnail_after_deferring(simcord_env, world, fake_service):
    fake_service.posters[8] = POSTER
    seen: dict[str, int] = {}
    fake_service.probe = lambda name: seen.setdefault(name, callbacks(simcord_env))
    before = callbacks(simcord_env)
    result = await world.member.slash(world.channel, "predict", movie="id:8")
    embed = result.response.embeds[0]
    assert embed.title == "The Matrix (1999)" and embed.thumbnail.url == POSTER
    assert ("poster", 8) in fake_service.calls
    assert seen["poster"] == before + 1  # asked only once Discord had its "thinking…"


async def test_predict_without_a_poster_has_no_thumbnail(simcord_env, world, fake_service):
    result = await world.member.slash(world.channel, "predict", movie="id:8")
    embed = result.response.embeds[0]
    assert embed.title == "The Matrix (1999)" and "3.5★" in embed.description
    assert embed.thumbnail.url is None
    assert ("poster", 8) in fake_service.calls  # asked, and None came back


async def test_similar_shows_the_movies_poster_and_recommend_its_top_picks(simcord_env, world, fake_service):
    fake_service.posters.update({m.movie_id: f"https://img.test/{m.movie_id}.jpg" for m in MOVIES})
    similar = await world.member.slash(world.channel, "similar", movie="Heat")
    assert similar.response.embeds[0].thumbnail.url == "https://img.test/3.jpg"

    fake_service.calls.clear()
    picks = await world.member.slash(world.channel, "recommend")
    embed = picks.response.embeds[0]
    [asked] = [movie for name, movie in fake_service.calls if name == "poster"]  # the top pick only
    top = next(m for m in MOVIES if m.movie_id == asked)
    assert embed.fields[0].name.startswith(f"1. {top.display}")
    assert embed.thumbnail.url == f"https://img.test/{asked}.jpg"


def test_the_tmdb_key_is_redacted_from_every_log_line_as_a_last_guard():
    import io
    import logging

    from bot.__main__ import setup_logging
    from recommender.core.config import Secret, Settings

    key = "v3key0123456789abcdef"
    stream = io.StringIO()
    setup_logging(Settings(tmdb_api_key=Secret(key)), stream)
    logging.getLogger("recommender.data.posters").warning("GET /movie/1?api_key=%s failed", key)
    assert key not in stream.getvalue() and "api_key=**********" in stream.getvalue()
