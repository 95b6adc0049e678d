"""A read-only database and a full disk, through the bot and the real service: one clear private
message, and nothing half-written."""

from __future__ import annotations

from recommender.core.errors import StorageUnavailable
from recommender.persistence.storage import read_member_ratings
from tests.ops.realbot import all_text, dump, is_private, real_service, running, settings_for


async def test_read_only_database_refuses_writes_clearly_and_changes_nothing(data_dir):
    settings = settings_for(data_dir)
    async with real_service(data_dir) as service, running(service, settings) as world:
        await world.alice.slash(world.channel, "rate", movie="id:50", stars=5.0)
        await world.alice.slash(world.channel, "rate", movie="id:181", stars=4.0)
    before = dump(data_dir / "bot.sqlite3")

    async with real_service(data_dir, read_only=True) as service, running(service, settings) as world:
        rated = await world.alice.slash(world.channel, "rate", movie="id:50", stars=1.0)
        assert is_private(rated)
        assert "couldn't save that" in all_text(rated) and "nothing was changed" in all_text(rated)
        new = await world.bob.slash(world.channel, "rate", movie="Toy Story (1995)", stars=3.0)
        assert "nothing was changed" in all_text(new)

        prompt = await world.alice.slash(world.channel, "forget")
        answer = await world.alice.click(prompt.response, label="Delete everything")
        assert "nothing was changed" in answer.response.content and answer.response.components == []

        # Reads keep working: members still get answers.
        recs = await world.alice.slash(world.channel, "recommend")
        assert recs.response.embeds and recs.response.embeds[0].title == "Five movies for you"
        mine = await world.alice.slash(world.channel, "ratings")
        assert "2 ratings" in mine.response.embeds[0].footer.text
        assert world.handled() == ["StorageUnavailable"] * 2  # the button's error is the view's own
    assert dump(data_dir / "bot.sqlite3") == before


async def test_a_full_disk_refuses_the_rating_clearly_and_keeps_the_database_whole(data_dir):
    settings = settings_for(data_dir)
    async with real_service(data_dir) as service:
        filler, accepted = 424242, 0
        await service.storage._limit_pages_for_tests(0)  # SQLite's own page cap: growth is SQLITE_FULL
        movie_ids = [m.movie_id for m in service.catalog.movies]
        for movie_id in movie_ids:
            try:
                await service.rate(filler, movie_id, 3.0)
            except StorageUnavailable:
                break
            accepted += 1
        else:
            raise AssertionError("the page cap never filled up: the disk-full path was not reached")

        async with running(service, settings) as world:
            rated = await world.alice.slash(world.channel, "rate", movie="id:50", stars=5.0)
            assert is_private(rated)
            text = all_text(rated)
            assert "couldn't save that" in text and "nothing was changed" in text and "full" in text
            assert "Traceback" not in text and "sqlite" not in text.lower()
            assert world.handled() == ["StorageUnavailable"]
    rows = read_member_ratings(data_dir / "bot.sqlite3")
    assert set(rows.user_id) == {filler}  # alice's rating is not there, not even partly
    assert len(rows) == accepted
