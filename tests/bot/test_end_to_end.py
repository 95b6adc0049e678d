"""A whole cycle on ml-100k through discord.py (simcord) and the real service, storage and worker.

A member rates movies, gets popular picks (no model yet), an admin runs /retrain (train.py in a
child process, a few epochs), and /recommend then answers from the member's learned taste with
different picks.
"""

from __future__ import annotations

import discord
import pytest
import simcord

import bot.__main__ as cli
from bot.client import create_bot
from recommender.core.config import Settings
from recommender.pipeline.worker import TrainingWorker
from tests.bot.test_admin_commands import original_edits

pytestmark = pytest.mark.slow

# Space operas and action classics loved, romances and musicals disliked (ml-100k movie ids).
LOVED = [50, 172, 181, 174, 195, 183, 176]
DISLIKED = [313, 143]


@pytest.fixture
def settings(tmp_path, movielens_dir) -> Settings:
    return Settings(data_dir=tmp_path, movielens_dataset="ml-100k", movielens_path=movielens_dir / "ml-100k")


def titles(result) -> list[str]:
    return [f.name.split(". ", 1)[1].rsplit(" — ", 1)[0] for f in result.response.embeds[0].fields]


async def test_rate_retrain_recommend_cycle(settings):
    await cli.prepare_catalog(settings)
    # Few epochs and one thread: a real training run that takes seconds, not minutes.
    worker = TrainingWorker(settings, args=["--epochs", "3", "--ranker-param", "epochs=3"], threads=1)
    async with cli.open_service(settings, worker=worker) as service:
        assert service.model_version is None
        bot = create_bot(settings, service)
        async with simcord.run(bot, settle_timeout=300) as env:
            guild = env.create_guild("Cinema")
            channel = guild.create_text_channel("movies")
            mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
            member = guild.add_member(env.create_user("alice"))
            admin = guild.add_member(env.create_user("carol"), roles=[mods])

            choices = await member.autocomplete(channel, "rate", "movie", "star wars")
            assert choices and choices[0]["name"] == "Star Wars (1977)" and choices[0]["value"] == "id:50"
            first = await member.slash(channel, "rate", movie=choices[0]["value"], stars=5.0)
            assert "Star Wars (1977)" in first.response.content and "5.0★" in first.response.content
            for movie in LOVED[1:]:
                await member.slash(channel, "rate", movie=f"id:{movie}", stars=5.0)
            for movie in DISLIKED:
                await member.slash(channel, "rate", movie=f"id:{movie}", stars=1.0)
            rerated = await member.slash(channel, "rate", movie="Titanic (1997)", stars=2.0)
            assert "updated from 1.0★" in rerated.response.content

            before = await member.slash(channel, "recommend")
            assert "popular" in before.response.embeds[0].footer.text
            assert len(titles(before)) == 5

            trained = await admin.slash(channel, "retrain")
            embed = trained.response.embeds[0]
            assert embed.title == "New model published", embed.description
            # what the admin watched while it trained: plain stage words, no event names
            watched = [e["content"] for e in original_edits(env) if e.get("content")]
            assert watched and watched[0] == "Training started in the worker…", watched
            assert all(w.startswith(("Training", "Checking picks for new members")) for w in watched), watched
            assert not any(f"({kind})" in w for w in watched for kind in ("epoch", "progress", "start"))
            # a real run's metrics.json: held-out RMSE and NDCG@5 lead, not its first keys
            assert embed.fields[0].value.startswith("Held-out RMSE **"), embed.fields[0].value
            assert "NDCG@5 **" in embed.fields[0].value
            assert [a.filename for a in trained.response.attachments] == ["loss.png"]
            assert service.model_version is not None and service.model_version in embed.description

            after = await member.slash(channel, "recommend")
            footer = after.response.embeds[0].footer.text
            # The member's ratings were in the training data: served from their learned embedding.
            assert "popular" not in footer and service.model_version not in footer  # no ids for members
            assert "taste profile from the last training" in footer, footer
            picks = titles(after)
            assert len(picks) == 5 and picks != titles(before)
            rated_titles = {"Star Wars (1977)", "Titanic (1997)"}
            assert not rated_titles & set(picks)
            # ordered by the ranking model, each pick names a movie of hers it rests on
            reasons = [f.value for f in after.response.embeds[0].fields]
            assert any("because you rated" in r for r in reasons), reasons

            predicted = await member.slash(channel, "predict", movie="Return of the Jedi (1983)")
            assert "popular" not in predicted.response.embeds[0].footer.text

            stats = await admin.slash(channel, "stats")
            fields = {f.name: f.value for f in stats.response.embeds[0].fields}
            assert fields["Ratings"] == str(len(LOVED) + len(DISLIKED)) and fields["Members"] == "1"
            assert service.model_version in fields["Model version"]

            # A rating made after the training run is folded in at once, without retraining.
            bot.cooldowns.reset()  # a minute passes: /rate allows 10 per minute (real-time buckets)
            extra = await member.slash(channel, "rate", movie="Empire Strikes Back, The (1980)", stars=4.0)
            assert "4.0★" in extra.response.content, extra.response.content
            missing = await member.slash(channel, "rate", movie="Star Warz Episode 9", stars=4.0)
            assert missing.ephemeral and "Did you mean: Star Wars (1977)" in missing.response.content
            assert [type(e.__cause__).__name__ for e in env.errors] == ["UnknownMovie"]  # handled, expected
            folded = await member.slash(channel, "recommend")
            assert "including your newest ones" in folded.response.embeds[0].footer.text
