"""/addmovie, /editmovie and /removemovie through discord.py's real interaction handling (simcord)."""

from __future__ import annotations

import pytest

from bot.errors import unwrap
from bot.ui import words
from recommender.core.types import Movie
from recommender.serving.added import max_year
from recommender.serving.contract import ContentReason, Prediction, ServingPath

CATALOGUE = ("addmovie", "editmovie", "removemovie")


def command(env, name: str):
    return next(c for c in env.bot.synced_commands if c.name == name)


def handled(env) -> list[str]:
    return [type(unwrap(e)).__name__ for e in env.errors]


def only_private_message(result) -> str:
    """The one message the admin got: private, and nothing else sent."""
    assert result.ephemeral and result.response is not None
    assert result.followups == []
    return result.response.content


async def _add(world, **options):
    return await world.admin.slash(world.channel, "addmovie", **options)


async def test_catalogue_commands_are_for_admins_only(simcord_env, world, fake_service):
    visible = world.member.available_commands(world.channel)
    assert not set(CATALOGUE) & set(visible)
    assert set(CATALOGUE) <= set(world.admin.available_commands(world.channel))
    # a server owner may show them to anyone; the bot still refuses
    for name in CATALOGUE:
        world.guild.set_command_permissions(command(simcord_env, name), {world.member: True})
    before = list(fake_service.movies)
    added = await world.member.slash(
        world.channel, "addmovie", title="Sneaky", year=2025, genres="Drama", imdb="tt1234567"
    )
    assert "Only server admins" in only_private_message(added)
    edited = await world.member.slash(world.channel, "editmovie", movie="id:1", title="Hijacked")
    assert "Only server admins" in only_private_message(edited)
    removed = await world.member.slash(world.channel, "removemovie", movie="id:1")
    assert "Only server admins" in only_private_message(removed)
    assert fake_service.movies == before
    assert handled(simcord_env) == ["AdminOnly"] * 3
    assert not [c for c in fake_service.calls if c[0] in {"add_movie", "edit_movie", "remove_movie"}]


async def test_an_added_movie_is_searchable_and_rateable_at_once(simcord_env, world, fake_service):
    result = await _add(world, title="Dune: Part Two", year=2024, genres="action, sci-fi", imdb="tt15239678")
    text = only_private_message(result)
    movie = fake_service.movies[-1]
    assert (movie.title, movie.year, movie.genres, movie.imdb_id) == (
        "Dune: Part Two",
        2024,
        ("Action", "Sci-Fi"),
        15239678,
    )
    assert movie.movie_id >= 10_000_000 and movie.movie_id in fake_service.added
    assert "Added **Dune: Part Two (2024)**" in text and "tt15239678" in text
    choices = await world.member.autocomplete(world.channel, "rate", "movie", "dune")
    assert [c["value"] for c in choices] == [f"id:{movie.movie_id}"]
    rated = await world.member.slash(world.channel, "rate", movie=f"id:{movie.movie_id}", stars=4.5)
    assert "Saved" in rated.response.content
    assert fake_service.ratings_by_user[world.member.id][movie.movie_id].stars == 4.5


async def test_genres_autocomplete_completes_the_last_one(simcord_env, world):
    choices = await world.admin.autocomplete(world.channel, "addmovie", "genres", "Action, dr")
    assert [c["value"] for c in choices] == ["Action, Drama"]
    first = await world.admin.autocomplete(world.channel, "addmovie", "genres", "")
    assert "Sci-Fi" in [c["value"] for c in first] and len(first) <= 25


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"genres": "Action, Telenovela"}, "Unknown genre “Telenovela”"),
        ({"year": 1850}, "between 1870 and"),
        ({"year": max_year() + 1}, "between 1870 and"),
        ({"imdb": "imdb.com/title/tt123"}, "is not an IMDb id"),
        ({"imdb": "tt12ab"}, "is not an IMDb id"),
        ({"title": "heat", "year": 1995}, "already in the catalogue"),  # a duplicate title + year
        ({"imdb": "tt0133093"}, "already in the catalogue"),  # the IMDb id of a catalogue movie
    ],
)
async def test_bad_details_get_one_private_message_and_change_nothing(
    simcord_env, world, fake_service, options, says
):
    fake_service.movies[7] = Movie(8, "The Matrix", 1999, ("Action", "Sci-Fi"), imdb_id=133093)
    before = list(fake_service.movies)
    details = {"title": "Brand New", "year": 2025, "genres": "Drama", **options}
    text = only_private_message(await _add(world, **details))
    assert says in text and ("Nothing was changed" in text or "nothing was added" in text)
    assert fake_service.movies == before and fake_service.added == set()
    assert handled(simcord_env) == ["DuplicateMovie" if "already" in says else "InvalidMovieDetails"]


async def test_editmovie_fixes_an_added_movie_and_never_a_dataset_one(simcord_env, world, fake_service):
    await _add(world, title="Dune Part 2", year=2023, genres="Action")
    movie = fake_service.movies[-1]
    offered = await world.admin.autocomplete(world.channel, "editmovie", "movie", "dune")
    assert [c["value"] for c in offered] == [f"id:{movie.movie_id}"]
    assert await world.admin.autocomplete(world.channel, "editmovie", "movie", "heat") == []

    fixed = await world.admin.slash(
        world.channel,
        "editmovie",
        movie=f"id:{movie.movie_id}",
        title="Dune: Part Two",
        year=2024,
        genres="Action, Sci-Fi",
    )
    assert "Updated: **Dune: Part Two (2024)**" in only_private_message(fixed)
    assert fake_service.movies[-1] == Movie(movie.movie_id, "Dune: Part Two", 2024, ("Action", "Sci-Fi"))

    before = list(fake_service.movies)
    dataset = await world.admin.slash(world.channel, "editmovie", movie="id:3", title="Hijacked")
    assert "comes from the MovieLens dataset" in only_private_message(dataset)
    bad = await world.admin.slash(world.channel, "editmovie", movie=f"id:{movie.movie_id}", year=1492)
    assert "between 1870 and" in only_private_message(bad)
    clash = await world.admin.slash(
        world.channel, "editmovie", movie=f"id:{movie.movie_id}", title="Heat", year=1995
    )
    assert "already in the catalogue" in only_private_message(clash)
    assert fake_service.movies == before
    assert handled(simcord_env) == ["NotAddedMovie", "InvalidMovieDetails", "DuplicateMovie"]


async def test_removemovie_asks_first_and_keeps_ratings_aside(simcord_env, world, fake_service):
    await _add(world, title="Oops", year=2025, genres="Comedy")
    movie = fake_service.movies[-1]
    await world.member.slash(world.channel, "rate", movie=f"id:{movie.movie_id}", stars=2.0)

    prompt = await world.admin.slash(world.channel, "removemovie", movie=f"id:{movie.movie_id}")
    assert prompt.ephemeral and "Remove **Oops (2025)**" in prompt.response.content
    cancelled = await world.admin.click(prompt.response, label="Cancel")
    assert "nothing was removed" in cancelled.response.content and movie in fake_service.movies

    prompt = await world.admin.slash(world.channel, "removemovie", movie="Oops")  # typed, not picked
    done = await world.admin.click(prompt.response, label="Remove it")
    assert "Removed **Oops (2025)**; 1 rating of it kept aside" in done.response.content
    assert movie not in fake_service.movies and fake_service.added == set()
    assert ("remove_movie", (movie.movie_id, world.admin.id)) in fake_service.calls


async def test_removemovie_refuses_a_dataset_movie_without_asking(simcord_env, world, fake_service):
    before = list(fake_service.movies)
    result = await world.admin.slash(world.channel, "removemovie", movie="id:3")
    assert "comes from the MovieLens dataset" in only_private_message(result)
    assert result.response.components == []
    assert fake_service.movies == before and not [c for c in fake_service.calls if c[0] == "remove_movie"]
    assert handled(simcord_env) == ["NotAddedMovie"]


def test_predict_words_for_an_added_movie_say_it_is_newer_than_the_model():
    movie = Movie(10_000_000, "Dune: Part Two", 2024, ("Sci-Fi",))
    added = Prediction(movie, 4.1, ServingPath.CONTENT, 12, content_reason=ContentReason.ADDED_MOVIE)
    text = words.explain_prediction(added)
    assert "newer than my model" in text and "genres and year" in text and "12 ratings" in text
    older = Prediction(movie, 4.1, ServingPath.CONTENT, 12, content_reason=ContentReason.NOT_LEARNED)
    assert "too few ratings" in words.explain_prediction(older)
