"""/import (every bad file), /export, /unrate, /forget's count and /recommend's filters, driven
through discord.py (simcord) over the fake service, which parses files with the real importer."""

from __future__ import annotations

import csv
import io

import discord
import pytest
import simcord

from bot.checks import USER_BUCKET
from bot.client import create_bot
from bot.ui.words import IMPORT_REFUSALS
from recommender.core.types import DATASETS, Movie
from recommender.data.imports import MAX_ROWS, RejectCode
from recommender.serving.contract import PickFilter
from tests.bot.fakes import MOVIES
from tests.bot.test_components import pick_ids
from tests.bot.test_member_commands import handled_errors

HEADER = "Date,Name,Year,Letterboxd URI,Rating\n"


def answer(result):
    """The private reply of a command that deferred privately (or refused before deferring)."""
    return result.followups[0] if result.followups else result.response


async def test_import_replies_with_counts_and_the_unmatched_rows_as_a_file(simcord_env, world, fake_service):
    rows = [
        "2019-01-01,Toy Story,1995,u1,4.5",
        "2019-01-02,Heat,1996,u2,5",  # a year off, unique title: matched
        "2019-01-03,Casino,1995,u3,",  # watched, not rated: skipped
        '2019-01-04,=HYPERLINK("http://x"),2020,u4,3',  # not in the catalogue, and a formula
        "2019-01-05,The Thing,,u5,3",  # two remakes and no year: not guessed
    ]
    result = await world.member.slash(
        world.channel, "import", file=("ratings.csv", (HEADER + "\n".join(rows)).encode())
    )
    reply = answer(result)
    assert result.ephemeral and reply.ephemeral
    assert reply.content.startswith("Imported 2 of 4 ratings; 2 are not in my catalogue"), reply.content
    assert "1 film logged without a rating were skipped" in reply.content
    assert "rounded" not in reply.content  # half stars fit ml-latest-small
    [attachment] = reply.attachments
    table = list(csv.reader(io.StringIO((await attachment.read()).decode())))
    assert table[0] == ["Date", "Name", "Year", "Letterboxd URI", "Rating", "line", "reason"]
    assert [row[-1] for row in table[1:]] == ["unknown_movie", "unknown_movie"]
    assert table[1][1].startswith("'=")  # a spreadsheet shows it as text, never runs it
    mine = fake_service.ratings_by_user[world.member.id]
    assert {m: r.stars for m, r in mine.items()} == {1: 4.5, 3: 5.0}

    # One command against the member's budget, not one per row; and /recommend sees them at once.
    cooldowns = simcord_env.bot.cooldowns._buckets
    assert ("rate", world.member.id) not in cooldowns
    per_minute = int(simcord_env.bot.settings.user_commands_per_minute)
    assert cooldowns[(USER_BUCKET, world.member.id)][0].get_tokens() == per_minute - 1
    recs = await world.member.slash(world.channel, "recommend")
    assert not {1, 3} & set(pick_ids(recs.response))


async def test_a_file_where_nothing_matches_says_so_plainly(simcord_env, world, fake_service):
    data = (HEADER + "2019-01-01,Unknown Festival Short,2019,u1,4\n").encode()
    reply = answer(await world.member.slash(world.channel, "import", file=("ratings.csv", data)))
    assert reply.content.startswith("None of the 1 rating in that file matched a movie I know")
    assert "right away" not in reply.content and len(reply.attachments) == 1
    assert not fake_service.ratings_by_user.get(world.member.id)


async def test_importing_the_same_file_again_changes_nothing(simcord_env, world, fake_service):
    data = (HEADER + "2019-01-01,Toy Story,1995,u1,4.5\n").encode()
    await world.member.slash(world.channel, "import", file=("ratings.csv", data))
    again = answer(await world.member.slash(world.channel, "import", file=("ratings.csv", data)))
    assert "Imported 1 of 1 ratings." in again.content
    assert "1 rating you already had stayed as they were" in again.content
    assert again.attachments == []


async def test_a_whole_star_dataset_rounds_and_says_so(tmp_path, fake_service):
    from recommender.core.config import Settings

    fake_service.scale = DATASETS["ml-100k"].scale
    settings = Settings(data_dir=tmp_path, movielens_dataset="ml-100k")
    async with simcord.run(create_bot(settings, fake_service)) as env:
        channel = env.create_guild().create_text_channel("general")
        alice = env.guild.add_member(env.create_user("alice"))
        data = (HEADER + "2019-01-01,Toy Story,1995,u1,3.5\n2019-01-02,Heat,1995,u2,4\n").encode()
        reply = answer(await alice.slash(channel, "import", file=("ratings.csv", data)))
        assert "whole stars, so half stars were rounded up (3.5★ became 4★)" in reply.content
        assert fake_service.ratings_by_user[alice.id][1].stars == 4.0


def _too_many_rows() -> bytes:
    return ("movieId,rating\n" + "1,4\n" * (MAX_ROWS + 1)).encode()


BAD_FILES = {
    "empty": (b"", RejectCode.EMPTY),
    "binary": (b"PK\x03\x04\x00\x00zipped", RejectCode.BINARY),
    "wrong columns": (b"name,score\nHeat,5\n", RejectCode.UNKNOWN_COLUMNS),
    "html saved as csv": (b"<!DOCTYPE html><html><body>Sign in</body></html>", RejectCode.HTML),
    "broken utf-8": ((HEADER + "2019-01-01,Am\xe9lie,2001,u,5\n").encode("latin-1"), RejectCode.NOT_UTF8),
    "header only": (HEADER.encode(), RejectCode.NO_ROWS),
    # a quote never closed swallows the rest of the file into one field, past the csv module's limit
    "unclosed quote": (b'movieId,rating\n"1,4\n' + b"2,3\n" * 40_000, RejectCode.MALFORMED),
    "too many rows": (_too_many_rows(), RejectCode.TOO_MANY_ROWS),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
async def test_a_bad_file_gets_one_clear_private_message_and_writes_nothing(
    simcord_env, world, fake_service, name
):
    data, code = BAD_FILES[name]
    result = await world.member.slash(world.channel, "import", file=("ratings.csv", data))
    reply = answer(result)
    assert reply.ephemeral and reply.content == f"{IMPORT_REFUSALS[code]} Nothing was imported."
    assert len(result.followups) <= 1
    assert not fake_service.ratings_by_user.get(world.member.id)
    assert handled_errors(simcord_env) == ["ImportRefused"]


async def test_a_50_mb_file_is_refused_from_its_size_before_downloading(
    simcord_env, world, fake_service, monkeypatch
):
    async def never(*_args, **_kwargs):
        raise AssertionError("the attachment was downloaded")

    monkeypatch.setattr(discord.Attachment, "read", never)
    result = await world.member.slash(world.channel, "import", file=("diary.csv", b"x" * (50 * 1024 * 1024)))
    assert (
        result.ephemeral
        and result.response.content == f"{IMPORT_REFUSALS[RejectCode.TOO_LARGE]} Nothing was imported."
    )
    assert "2 MB" in result.response.content
    assert not [c for c in fake_service.calls if c[0] == "import_ratings"]
    assert handled_errors(simcord_env) == ["ImportRefused"]


async def test_unrate_removes_one_rating(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    await world.member.slash(world.channel, "rate", movie="id:2", stars=3.0)
    done = await world.member.slash(world.channel, "unrate", movie="id:1")
    assert done.ephemeral and "Removed your rating of **Toy Story (1995)**" in answer(done).content
    assert set(fake_service.ratings_by_user[world.member.id]) == {2}
    again = await world.member.slash(world.channel, "unrate", movie="Toy Story")
    assert "haven't rated" in answer(again).content


async def test_forget_says_how_many_in_the_prompt_and_the_result(simcord_env, world, fake_service):
    nothing = await world.member.slash(world.channel, "forget")
    assert "no ratings to delete" in nothing.response.content and not nothing.response.components
    for movie in (1, 2, 3):
        await world.member.slash(world.channel, "rate", movie=f"id:{movie}", stars=4.0)
    prompt = await world.member.slash(world.channel, "forget")
    assert "**all 3** of your ratings" in prompt.response.content
    done = await world.member.click(prompt.response, label="Delete everything")
    assert "deleted 3 ratings" in done.response.content


async def test_export_sends_a_private_formula_safe_csv_that_import_reads_back(
    simcord_env, world, fake_service
):
    fake_service.movies.append(Movie(500, "=cmd|' /C calc'!A0", 2001, ("Drama",)))
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.5)
    await world.member.slash(world.channel, "rate", movie="id:500", stars=2.0)
    result = await world.member.slash(world.channel, "export")
    reply = answer(result)
    assert result.ephemeral and "your 2 ratings" in reply.content
    [attachment] = reply.attachments
    data = await attachment.read()
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    by_id = {row["movieId"]: row for row in rows}
    assert (
        by_id["1"]["rating"] == "4.5"
        and by_id["1"]["imdbId"] == "tt0114709"
        and by_id["1"]["tmdbId"] == "862"
    )
    assert by_id["500"]["title"] == "'=cmd|' /C calc'!A0"

    fake_service.ratings_by_user.clear()
    back = answer(await world.other.slash(world.channel, "import", file=("my-ratings.csv", data)))
    assert back.content.startswith("Imported 2 of 2 ratings.")
    assert {m: r.stars for m, r in fake_service.ratings_by_user[world.other.id].items()} == {1: 4.5, 500: 2.0}


async def test_export_with_no_ratings_says_so(simcord_env, world):
    reply = answer(await world.member.slash(world.channel, "export"))
    assert "no ratings to export" in reply.content and reply.attachments == []


async def test_recommend_filters_by_genre_and_years(simcord_env, world, fake_service):
    synced = next(r for r in simcord_env.http_requests if r.method == "PUT" and r.path.endswith("/commands"))
    recommend = next(c for c in synced.json if c["name"] == "recommend")
    options = {o["name"]: o for o in recommend["options"]}
    assert {c["value"] for c in options["genre"]["choices"]} == {g for m in MOVIES for g in m.genres}
    assert [c["name"] for c in options["decade"]["choices"]][-3:] == ["2000s", "2010s", "2020s"]

    shown = await world.member.slash(world.channel, "recommend", genre="Action", decade=1990, until=1997)
    assert ("recommend_options", (PickFilter("Action", 1990, 1997), 0)) in fake_service.calls
    embed = shown.response.embeds[0]
    assert embed.title == "Five movies for you: Action, 1990–1997"
    assert [f.name.split(". ", 1)[1].split(" (")[0] for f in embed.fields] == ["Heat", "GoldenEye"]
    assert not [
        c for r in shown.response.components for c in r["components"] if c["custom_id"].startswith("rec:more")
    ]

    refused = await world.member.slash(world.channel, "recommend", since=2005, until=1999)
    assert refused.ephemeral and "from 2005 and up to 1999" in refused.response.content
    assert handled_errors(simcord_env) == ["RecommenderError"]
