"""The member's loop through discord.py (simcord) over the REAL service, storage and catalogue:
buttons pressed after a restart (a new bot and service over the same database), /import stored in
one go and folded in at the next /recommend."""

from __future__ import annotations

import time
from pathlib import Path

import simcord

from bot.client import create_bot
from recommender.core.config import Settings
from recommender.persistence.registry import Registry
from recommender.persistence.storage import Storage
from recommender.serving.catalog import Catalog
from recommender.serving.contract import ServingPath
from recommender.serving.service import RecommenderService
from tests.bot.test_components import custom_ids, pick_ids
from tests.recommender.serving.service_fakes import (
    CLUSTER_A,
    CLUSTER_B,
    HALF,
    make_model,
    movies,
    popularity,
    publish,
)


async def open_service(db: Path, models: Path) -> RecommenderService:
    storage = await Storage(db).open()
    await storage.load_catalog("ml-latest-small", movies(), popularity())
    service = RecommenderService(
        storage,
        Catalog(movies(), {m: p[0] for m, p in popularity().items()}),
        Registry(models),
        HALF,
        popularity=popularity(),
        reload_check_seconds=3600.0,
    )
    service.reload_model()
    return service


async def close(service: RecommenderService) -> None:
    await service.close()
    await service.storage.close()


def letterboxd(rows: list[tuple[str, int, str]]) -> bytes:
    lines = ["Date,Name,Year,Letterboxd URI,Rating"]
    lines += [
        f"2019-01-0{1 + i % 9},{name},{year},https://boxd.it/{i},{stars}"
        for i, (name, year, stars) in enumerate(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


async def test_buttons_keep_working_after_a_restart_over_the_same_database(tmp_path):
    settings = Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small")
    db, models = tmp_path / "bot.sqlite3", tmp_path / "models"
    first = await open_service(db, models)
    async with simcord.run(create_bot(settings, first)) as env:
        channel = env.create_guild("Cinema").create_text_channel("movies")
        alice = env.guild.add_member(env.create_user("alice"))
        bob = env.guild.add_member(env.create_user("bob"))
        shown = await alice.slash(channel, "recommend")
        picks = pick_ids(shown.response)
        assert picks[:5] == CLUSTER_A[:5]  # popularity: cluster A is the most popular

        # Restart: the old bot and service go away; a new bot over a new service and the same file.
        await close(first)
        second = await open_service(db, models)
        await env.restart_bot(create_bot(settings, second))
        hidden = await alice.click(shown.response, custom_id=f"rec:hide:{alice.id}:{picks[0]}")
        assert "Hidden **Action 1 (1991)**" in hidden.response.content
        assert await second.storage.hidden(alice.id) == [picks[0]]
        refused = await bob.click(shown.response, custom_id=f"rec:watch:{alice.id}:{picks[1]}")
        assert "someone else's" in refused.response.content
        assert await second.storage.watchlist(alice.id) == []

        more = await alice.click(shown.response, custom_id=f"rec:more:{alice.id}:5:::")
        paged = pick_ids(more.response)
        assert picks[0] not in paged and not set(picks) & set(paged)  # hidden, and no repeats
        fresh = await alice.slash(channel, "recommend")
        assert picks[0] not in pick_ids(fresh.response)
        assert all(f":{alice.id}:" in cid for cid in custom_ids(fresh.response))
    await close(second)


async def test_import_is_stored_at_once_and_folded_in_even_for_a_trained_member(tmp_path):
    settings = Settings(data_dir=tmp_path, movielens_dataset="ml-latest-small")
    db, models = tmp_path / "bot.sqlite3", tmp_path / "models"
    service = await open_service(db, models)
    # Her Letterboxd history (dated 2019, before the training) loves cluster B and dislikes the rest
    # of A; some rows carry a year one off.
    rows = [(f"Drama {m}", 1990 + m + (m % 2), "5") for m in CLUSTER_B[:6]]
    rows += [(f"Action {m}", 1990 + m, "0.5") for m in CLUSTER_A[1:5]]
    rows += [("Not A Movie We Have", 2001, "4"), ("Drama 11", 2001, "11")]
    async with simcord.run(create_bot(settings, service)) as env:
        channel = env.create_guild("Cinema").create_text_channel("movies")
        alice = env.guild.add_member(env.create_user("alice"))
        # A model trained on her taste for cluster A, after everything she had rated so far.
        await service.storage.upsert_rating(alice.id, CLUSTER_A[0], 5.0, None, rated_at=time.time() - 3600)
        publish(
            Registry(models), make_model("v1", trained_members={alice.id: CLUSTER_A}, trained_at=time.time())
        )
        service.reload_model()
        assert (await service.recommend(alice.id)).path is ServingPath.TRAINED

        result = await alice.slash(channel, "import", file=("ratings.csv", letterboxd(rows)))
        answer = result.followups[0] if result.followups else result.response
        assert answer.ephemeral
        assert answer.content.startswith("Imported 10 of 12 ratings; 2 are not in my catalogue"), (
            answer.content
        )
        [attachment] = answer.attachments
        assert attachment.filename == "not-imported.csv"
        body = (await attachment.read()).decode()
        assert "unknown_movie" in body and "out_of_range" in body
        stored = {r.movie_id: r.stars for r in await service.storage.user_ratings(alice.id)}
        assert {m: stored[m] for m in CLUSTER_B[:6]} == dict.fromkeys(CLUSTER_B[:6], 5.0)

        recs = await service.recommend(alice.id)
        assert recs.path is ServingPath.FOLD_IN and recs.n_ratings == 11
        # her imported taste, at once: the rest of cluster B leads (four left unrated)
        assert {p.movie.movie_id for p in recs.picks[:4]} == set(CLUSTER_B[6:])
        shown = await alice.slash(channel, "recommend")
        assert "including your newest ones" in shown.response.embeds[0].footer.text
    await close(service)
