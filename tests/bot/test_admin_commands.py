"""Admin commands and the retrain flow, through discord.py's real interaction handling (simcord)."""

from __future__ import annotations

import asyncio
import dataclasses

import discord
import pytest
from simcord import SetupError

from bot.client import create_bot
from bot.errors import unwrap
from recommender.core.config import Settings


def command(env, name: str):
    return next(c for c in env.bot.synced_commands if c.name == name)


def handled(env) -> list[str]:
    return [type(unwrap(e)).__name__ for e in env.errors]


def original_edits(env) -> list[dict]:
    return [
        r.json or {}
        for r in env.http_requests
        if r.method == "PATCH" and r.path.endswith("/messages/@original")
    ]


def hold_retrain(simcord_env, fake_service, reason: str, then: Exception | None = None) -> asyncio.Event:
    """Make the fake's retrain wait (an intentional external wait: simcord settles meanwhile) until
    the returned event is set; then finish, or raise ``then``."""
    release = asyncio.Event()

    async def hold() -> None:
        await simcord_env.external_wait(release.wait(), reason=reason)
        if then is not None:
            raise then

    fake_service.retrain_gate = hold
    return release


async def test_admin_commands_are_hidden_from_members(simcord_env, world):
    visible = world.member.available_commands(world.channel)
    assert {"rate", "recommend", "predict", "similar", "ratings", "forget"} <= set(visible)
    assert "retrain" not in visible and "stats" not in visible
    assert {"retrain", "stats"} <= set(world.admin.available_commands(world.channel))
    with pytest.raises(SetupError):
        await world.member.slash(world.channel, "retrain")


async def test_non_admin_is_refused_even_when_the_server_shows_them_the_command(
    simcord_env, world, fake_service
):
    # A server owner can override Discord's default_member_permissions hint for anyone.
    world.guild.set_command_permissions(command(simcord_env, "retrain"), {world.member: True})
    world.guild.set_command_permissions(command(simcord_env, "stats"), {world.member: True})
    assert "retrain" in world.member.available_commands(world.channel)

    refused = await world.member.slash(world.channel, "retrain")
    assert refused.ephemeral and "Only server admins" in refused.response.content
    stats = await world.member.slash(world.channel, "stats")
    assert stats.ephemeral and "Only server admins" in stats.response.content
    assert not [c for c in fake_service.calls if c[0] == "retrain"]
    assert handled(simcord_env) == ["AdminOnly", "AdminOnly"]


async def test_the_admin_role_from_settings_is_enough(fake_service, tmp_path):
    import simcord

    async with simcord.run(create_bot(Settings(data_dir=tmp_path), fake_service)) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        curators = guild.create_role("Curators")  # no Manage Server
        curator = guild.add_member(env.create_user("dana"), roles=[curators])
        env.bot.settings = Settings(data_dir=tmp_path, admin_role_id=curators.id)
        guild.set_command_permissions(command(env, "stats"), {curators: True})
        result = await curator.slash(channel, "stats")
        assert result.ephemeral and result.response.embeds[0].title == "Recommender stats"


async def test_retrain_reports_progress_then_metrics_and_the_loss_curve(
    simcord_env, world, fake_service, tmp_path
):
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    fake_service.plot_path = str(plot)
    fake_service.retrain_epochs = 20

    result = await world.admin.slash(world.channel, "retrain")
    assert not result.ephemeral
    edits = original_edits(simcord_env)
    progress = [
        e for e in edits if "epoch" in (e.get("content") or "") or "started" in (e.get("content") or "")
    ]
    assert progress, "the reply should show training progress before the result"
    # 21 progress events arrive within a second: the edits are throttled to about one a second.
    assert len(progress) < 5
    final = result.response
    embed = final.embeds[0]
    assert embed.title == "New model published" and "v1" in embed.description
    # the figures an admin reads, not the first keys of metrics.json
    assert embed.fields[0].name == "Figures"
    assert "Held-out RMSE **0.8712** (global mean 1.0431)" in embed.fields[0].value
    assert "NDCG@5 **0.0312**" in embed.fields[0].value
    assert embed.image.url == "attachment://loss.png"
    assert [a.filename for a in final.attachments] == ["loss.png"]
    assert ("retrain", False) in fake_service.calls


async def test_retrain_that_is_not_published_says_why(simcord_env, world, fake_service):
    fake_service.retrain_publish = False
    result = await world.admin.slash(world.channel, "retrain")
    embed = result.response.embeds[0]
    assert "not published" in embed.title and "worse than 0.91" in embed.description
    assert result.response.attachments == []


async def test_a_second_retrain_while_one_runs_joins_it_and_gets_the_result_too(
    simcord_env, world, fake_service
):
    release = hold_retrain(simcord_env, fake_service, "first retrain held by the test")
    first = await world.admin.slash(world.channel, "retrain")
    assert first.acknowledged and first.response.embeds == []  # still training

    second = await world.admin.slash(world.channel, "retrain")
    # promised only because this process runs it and has put the second admin on its list
    assert "already running" in second.response.content
    assert "I'll post its results here" in second.response.content
    assert f"<@{world.admin.id}>" in second.response.content  # who started it
    assert handled(simcord_env) == []

    release.set()
    await simcord_env.settle()
    assert first.response.embeds[0].title == "New model published"
    assert second.response.embeds[0].title == "New model published"  # the promise was kept
    assert [c for c in fake_service.calls if c[0] == "retrain"] == [("retrain", False)]


async def test_an_admin_who_joined_hears_when_the_run_fails(simcord_env, world, fake_service):
    from recommender.core.errors import RecommenderError

    failure = RecommenderError("the worker could not start")
    release = hold_retrain(simcord_env, fake_service, "first retrain held by the test", then=failure)
    first = await world.admin.slash(world.channel, "retrain")
    second = await world.admin.slash(world.channel, "retrain")
    assert "I'll post its results here" in second.response.content
    release.set()
    await simcord_env.settle()
    # the starter gets the error privately; the one who joined gets what happened instead of silence
    assert [f.content for f in first.followups if f.ephemeral] == ["the worker could not start"]
    assert second.response.embeds[0].title == "Retrain failed"
    assert "RecommenderError" in second.response.embeds[0].description
    assert handled(simcord_env) == ["RecommenderError"]


async def test_a_run_that_outlasts_the_token_posts_its_result_in_the_channel(
    simcord_env, world, fake_service
):
    release = hold_retrain(simcord_env, fake_service, "a long retrain held by the test")
    started = await world.admin.slash(world.channel, "retrain")
    edits_before = len(original_edits(simcord_env))
    await simcord_env.advance_time(20 * 60)  # past Discord's 15 minutes
    release.set()
    await simcord_env.settle()

    # no edit of the expired reply (progress stopped too); a channel message that mentions the admin
    assert len(original_edits(simcord_env)) == edits_before
    assert started.response.embeds == []
    posted = world.channel.last_message
    assert posted.content == f"<@{world.admin.id}> the retrain you asked for has finished:"
    assert posted.embeds[0].title == "New model published"
    assert handled(simcord_env) == []


async def test_an_edit_refused_for_an_expired_token_falls_back_to_the_channel(
    simcord_env, world, fake_service, monkeypatch
):
    # Discord can refuse the token a little before our own clock says so (clock skew).
    from bot import retrain

    monkeypatch.setattr(retrain.token_valid, "__kwdefaults__", {"margin": -3600.0})
    release = hold_retrain(simcord_env, fake_service, "a long retrain held by the test")
    await world.admin.slash(world.channel, "retrain")
    await simcord_env.advance_time(16 * 60)
    edits_before = len(original_edits(simcord_env))
    release.set()
    await simcord_env.settle()
    assert len(original_edits(simcord_env)) > edits_before  # tried the reply first; Discord said 404
    posted = world.channel.last_message
    assert posted.content.endswith("the retrain you asked for has finished:")
    assert posted.embeds[0].title == "New model published"


async def test_a_retrain_running_in_another_process_is_named_not_promised(simcord_env, world, fake_service):
    from recommender.serving.contract import RetrainHolder

    fake_service.holder = RetrainHolder(
        31337, "gpu-box", 1_700_000_000.0, "schedule", ours=False, same_host=False
    )
    result = await world.admin.slash(world.channel, "retrain")
    text = result.response.content
    assert "another process (pid 31337 on `gpu-box`)" in text and "scheduled" in text
    assert "I'll post" not in text and "show in /stats" in text
    stats = await world.admin.slash(world.channel, "stats")
    fields = {f.name: f.value for f in stats.response.embeds[0].fields}
    assert fields["Retrain"].startswith("running in another process (pid 31337 on `gpu-box`)")


async def test_stats_leads_with_the_figures_and_the_stored_last_retrain(simcord_env, world, fake_service):
    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    await world.admin.slash(world.channel, "retrain")
    result = await world.admin.slash(world.channel, "stats")
    assert result.ephemeral
    embed = result.response.embeds[0]
    lines = embed.description.splitlines()
    assert lines[0] == "Serving `v1` (mf)"
    assert lines[1].startswith("Held-out RMSE **0.8712** (global mean 1.0431)")
    assert lines[2].startswith("NDCG@5 **0.0312**") and lines[3].startswith("Trained <t:")
    assert lines[4] == "0 member ratings since"
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Last retrain"].startswith("published `v1` <t:")
    assert f"(started by <@{world.admin.id}>)" in fields["Last retrain"]
    assert fields["Retrain"] == "idle"
    assert fields["Ratings"] == "1" and fields["Members"] == "1"
    assert "total 2" in fields["Interactions"] and "/rate 1 (0 err)" in fields["Interactions"]


async def test_the_last_retrain_comes_from_the_service_so_a_restarted_bot_shows_it(fake_service, tmp_path):
    import simcord

    from recommender.serving.contract import RetrainRecord

    # what the database holds after a restart: the new bot process itself remembers nothing
    fake_service.retrain_runs.append(
        RetrainRecord(10.0, 20.0, "schedule", False, "v-held", "RMSE 0.95 is worse than 0.90", {})
    )
    async with simcord.run(create_bot(Settings(data_dir=tmp_path), fake_service)) as env:
        guild = env.create_guild()
        channel = guild.create_text_channel("general")
        mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        admin = guild.add_member(env.create_user("dana"), roles=[mods])
        stats = await admin.slash(channel, "stats")
        fields = {f.name: f.value for f in stats.response.embeds[0].fields}
        assert fields["Last retrain"].startswith("not published `v-held`")
        assert "(scheduled): RMSE 0.95 is worse than 0.90" in fields["Last retrain"]


async def test_background_loop_retrains_only_after_enough_new_ratings(simcord_env, world, fake_service):
    bot = simcord_env.bot
    assert bot.retrain_loop.is_running()
    # The first tick ran at start-up with no ratings: nothing to do.
    assert not [c for c in fake_service.calls if c[0] == "retrain"]

    await world.member.slash(world.channel, "rate", movie="id:1", stars=4.0)
    await simcord_env.advance_time(bot.settings.retrain_interval_hours * 3600)
    assert not [c for c in fake_service.calls if c[0] == "retrain"]  # 1 < RETRAIN_MIN_NEW_RATINGS (3)

    for movie in ("id:2", "id:3"):
        await world.member.slash(world.channel, "rate", movie=movie, stars=4.0)
    await simcord_env.advance_time(bot.settings.retrain_interval_hours * 3600)
    assert [c for c in fake_service.calls if c[0] == "retrain"] == [("retrain", False)]
    stats = await world.admin.slash(world.channel, "stats")
    fields = {f.name: f.value for f in stats.response.embeds[0].fields}
    assert fields["Last retrain"].startswith("published `v1`")  # what the loop recorded, as /stats shows it
    assert "(scheduled)" in fields["Last retrain"]

    await simcord_env.advance_time(bot.settings.retrain_interval_hours * 3600)
    assert len([c for c in fake_service.calls if c[0] == "retrain"]) == 1  # nothing new since


async def test_a_scheduled_retrain_posts_to_the_admin_channel_when_one_is_set(
    simcord_env, world, fake_service
):
    bot = simcord_env.bot
    admins = world.guild.create_text_channel("bot-admin")
    for movie in ("id:1", "id:2", "id:3"):
        await world.member.slash(world.channel, "rate", movie=movie, stars=4.0)
    await simcord_env.advance_time(bot.settings.retrain_interval_hours * 3600)  # no channel set
    assert admins.last_message is None and world.channel.last_message is None

    bot.settings = dataclasses.replace(bot.settings, admin_channel_id=admins.id)
    await world.member.slash(world.channel, "rate", movie="id:4", stars=4.0)
    for movie in ("id:5", "id:6"):
        await world.member.slash(world.channel, "rate", movie=movie, stars=3.0)
    await simcord_env.advance_time(bot.settings.retrain_interval_hours * 3600)
    posted = admins.last_message
    assert posted.content == "A scheduled retrain (3 new ratings) has finished:"
    assert posted.embeds[0].title == "New model published" and not posted.mentions
    assert [r.trigger for r in fake_service.retrain_runs] == ["schedule", "schedule"]


async def test_a_run_a_dead_process_left_is_reported_in_the_admin_channel(simcord_env, world, fake_service):
    from bot.client import RECOVERY_SECONDS
    from recommender.serving.contract import RetrainRecord

    bot = simcord_env.bot
    admins = world.guild.create_text_channel("bot-admin")
    bot.settings = dataclasses.replace(bot.settings, admin_channel_id=admins.id)
    fake_service.to_recover = RetrainRecord(
        1.0, 2.0, "admin:7", False, None, "the training process (pid 9) ended when the bot stopped", {}
    )
    await simcord_env.advance_time(RECOVERY_SECONDS + 1)
    posted = admins.last_message
    assert posted.content.startswith("A retrain that was running when the bot stopped")
    assert posted.embeds[0].title == "Retrain failed" and "pid 9" in posted.embeds[0].description


async def test_closing_the_bot_cancels_the_loop(simcord_env):
    bot = simcord_env.bot
    assert bot.retrain_loop.is_running()
    await bot.close()
    await simcord_env.settle()
    assert not bot.retrain_loop.is_running()


async def test_intents_are_not_privileged(simcord_bot):
    intents = simcord_bot.intents
    assert intents.guilds
    assert not (intents.members or intents.presences or intents.message_content)
    assert isinstance(simcord_bot, discord.ext.commands.Bot)


async def test_every_command_is_acknowledged_before_the_service_is_asked(simcord_env, world, fake_service):
    """Discord allows 3 s to acknowledge; the bot defers before any service call that could be slow."""
    seen: dict[str, int] = {}

    def callbacks() -> int:
        return sum(1 for r in simcord_env.http_requests if r.path.endswith("/callback"))

    fake_service.probe = lambda name: seen.setdefault(name, callbacks())
    invocations = [
        (world.member, "rate", {"movie": "id:1", "stars": 4.0}, "rate"),
        (world.member, "recommend", {}, "recommend"),
        (world.member, "predict", {"movie": "id:2"}, "predict"),
        (world.member, "similar", {"movie": "id:3"}, "similar"),
        (world.member, "ratings", {}, "ratings"),
        (world.admin, "stats", {}, "stats"),
        (world.admin, "retrain", {}, "retrain"),
    ]
    for actor, name, options, service_call in invocations:
        before = callbacks()
        await actor.slash(world.channel, name, **options)
        assert seen[service_call] == before + 1, f"/{name} called the service before acknowledging"
        seen.pop(service_call)
    # /forget asks the service only after the button press, which is acknowledged by the edit.
    prompt = await world.member.slash(world.channel, "forget")
    await world.member.click(prompt.response, label="Delete everything")
    assert "forget" in seen


async def test_a_failing_retrain_reaches_the_admin_privately(simcord_env, world, fake_service):
    from recommender.core.errors import RecommenderError

    async def broken() -> None:
        raise RecommenderError("Retraining isn't set up on this bot.")

    fake_service.retrain_gate = broken
    result = await world.admin.slash(world.channel, "retrain")
    assert result.response is None  # the public "thinking…" reply is removed
    assert [f.content for f in result.followups if f.ephemeral] == ["Retraining isn't set up on this bot."]
    assert handled(simcord_env) == ["RecommenderError"]
    assert not simcord_env.bot.retrainer.running  # free for the next attempt


async def test_commands_sync_to_the_dev_guild_when_set(fake_service, tmp_path):
    import simcord

    settings = Settings(data_dir=tmp_path, dev_guild_id=987654321)
    async with simcord.run(create_bot(settings, fake_service)) as env:
        puts = [r.path for r in env.http_requests if r.method == "PUT"]
        assert puts and all(p.endswith("/guilds/987654321/commands") for p in puts)


async def test_the_bot_takes_the_daily_backup_on_its_own_loop(fake_service, tmp_path):
    import simcord

    from bot.client import BACKUP_CHECK_HOURS
    from recommender.persistence.storage import Storage

    settings = Settings(data_dir=tmp_path, backup_keep_days=3)
    async with Storage(settings.db_path):  # the bot's SQLite file, as `make run` leaves it
        pass
    async with simcord.run(create_bot(settings, fake_service)) as env:
        bot = env.bot
        # the first tick runs at start-up: a bot restarted every few hours still backs up daily
        assert bot.backup_loop.is_running() and bot.backup_loop.hours == BACKUP_CHECK_HOURS
        await env.settle()
        backups = sorted((tmp_path / "backups").glob("bot-*.sqlite3"))
        assert len(backups) == 1 and bot.last_backup == backups[0]
        await env.advance_time(3 * 3600)  # hourly checks: not due again within the day
        assert sorted((tmp_path / "backups").glob("bot-*.sqlite3")) == backups
