"""Movie options: autocomplete stays fast and safe on a ml-25m-sized catalogue with hostile input,
and its choices fit Discord's limits (which live in bot/ui/transformers.py, not the catalogue)."""

from __future__ import annotations

import time

import pytest

from benchmarks.bench_catalog import synthetic_catalog
from bot.ui.transformers import MAX_CHOICES, MAX_NAME, MAX_QUERY, MovieTransformer, movie_choices
from recommender.core.errors import UnknownMovie
from recommender.serving.catalog import Catalog
from tests.bot.fakes import FakeService

HOSTILE = {
    "very long": "star wars " * 2_000,
    "unicode": "Ａｍéｌｉｅ 🎬 ﷽ \u202e\u200b 東京物語 ß ǅ",
    "only punctuation": "!?.,;:'\"()[]{}<>/\\|`~@#$%^&*-_=+" * 4,
    "regex metacharacters": r".*+?^$()[]{}|\ (?P<x>a)\1 [^a-z]+ .{0,99999}",
    "25 words": " ".join(f"word{i}" for i in range(25)),
    "control characters": "\x00\x01\x07\x1b[31m godfather \x7f",
    "whitespace": " \t\n\r " * 50,
}


@pytest.fixture(scope="module")
def big_catalog() -> Catalog:
    movies, popularity = synthetic_catalog(62_000, seed=0)
    return Catalog(movies, popularity)


class _CatalogService(FakeService):
    """The fake, searching a real catalogue the way RecommenderService does."""

    catalog: Catalog | None = None

    def search(self, query: str, limit: int, max_len: int | None = None) -> list:
        assert self.catalog is not None
        return self.catalog.search(query, limit, max_len=max_len)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_autocomplete_answers_hostile_queries_within_a_second(big_catalog, kind):
    service = _CatalogService()
    service.catalog = big_catalog
    began = time.perf_counter()
    choices = movie_choices(service, HOSTILE[kind])
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0, f"{kind}: {elapsed:.2f} s"
    assert len(choices) <= MAX_CHOICES
    assert all(len(c.name) <= MAX_NAME and c.value.startswith("id:") for c in choices)


def test_choices_are_cut_to_discords_limits():
    service = FakeService()
    choices = movie_choices(service, "filler")
    assert len(choices) == MAX_CHOICES  # 40 titles match
    (long,) = movie_choices(service, "aaaa")
    assert len(long.name) <= MAX_NAME and long.name.endswith("… (2001)")


def test_typed_text_resolves_and_a_picked_id_must_exist():
    service = FakeService()
    assert MovieTransformer.resolve_now(service, "id:3").title == "Heat"
    assert MovieTransformer.resolve_now(service, "  Heat ").movie_id == 3
    with pytest.raises(UnknownMovie):
        MovieTransformer.resolve_now(service, "id:424242")
    with pytest.raises(UnknownMovie):
        MovieTransformer.resolve_now(service, "x" * (MAX_QUERY * 3))
