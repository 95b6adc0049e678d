"""Every code the recommender returns has its words, and the words carry the numbers."""

from __future__ import annotations

import pytest

from bot.ui import words
from recommender.core.types import Movie
from recommender.serving.contract import (
    Pick,
    PickReason,
    PopularityReason,
    Prediction,
    RatingResult,
    Recommendations,
    ServingPath,
)

HEAT = Movie(3, "Heat", 1995, ("Action",))
ALIEN = Movie(4, "Alien", 1979, ("Horror", "Sci-Fi"))


@pytest.mark.parametrize("path", list(ServingPath))
def test_every_path_has_a_label(path):
    assert words.PATH_LABELS[path]


@pytest.mark.parametrize("reason", list(PopularityReason))
def test_every_popularity_reason_is_worded_for_lists_and_predictions(reason):
    recs = Recommendations((), ServingPath.POPULARITY, 0, reason, None)
    assert words.explain_recommendations(recs).startswith("popular picks: ")
    prediction = Prediction(HEAT, 4.2, ServingPath.POPULARITY, 0, reason, None, 87)
    assert words.explain_prediction(prediction).startswith("87 ratings average 4.2★; that's the crowd's view")


def test_paths_say_how_many_ratings_they_rest_on():
    assert words.explain_path(ServingPath.TRAINED, 1) == "based on your 1 rating"
    assert words.explain_path(ServingPath.FOLD_IN, 12) == "based on your 12 ratings (learned just now)"
    assert words.explain_path(ServingPath.CONTENT, 0).startswith("based on your taste, matched by genres")
    nobody = Prediction(HEAT, 3.5, ServingPath.POPULARITY, 0, PopularityReason.NO_MODEL, 4.5, 0)
    assert words.explain_prediction(nobody) == (
        "nobody has rated it yet, so that's the overall average; that's the crowd's view: "
        "my taste model isn't available right now; you rated it 4.5★"
    )


@pytest.mark.parametrize(
    ("pick", "text"),
    [
        (Pick(HEAT, 4.25, PickReason.PREDICTED), "I think you'd give it 4.2★"),
        (Pick(HEAT, 4.0, PickReason.POPULAR, ratings=1), "4.0★ on average from 1 rating"),
        (Pick(HEAT, 4.0, PickReason.POPULAR), "4.0★ on average"),
        (Pick(HEAT, 4.0, PickReason.SIMILAR, similarity=0.876), "liked by the same people (similarity 0.88)"),
        (Pick(HEAT, 4.0, PickReason.SHARED_GENRES, shared_genres=2), "popular and shares 2 genres with it"),
        (
            Pick(HEAT, 4.5, PickReason.PREDICTED, because=((ALIEN, 5.0),)),
            "I think you'd give it 4.5★, because you rated Alien 5.0★",
        ),
        (
            Pick(HEAT, 4.0, PickReason.PREDICTED, because=((ALIEN, 5.0), (HEAT, 3.5))),
            "I think you'd give it 4.0★, because you rated Alien 5.0★ and Heat 3.5★",
        ),
    ],
)
def test_pick_reasons_carry_their_numbers(pick, text):
    assert words.pick_reason(pick) == text


def test_rate_text_says_new_updated_or_unchanged():
    assert (
        words.rate_text(RatingResult(HEAT, 4.5, None, 1), "Heat")
        == "Saved: **Heat** — 4.5★. You have rated 1 movie."
    )
    assert "(updated from 3.0★)" in words.rate_text(RatingResult(HEAT, 4.5, 3.0, 2), "Heat")
    assert "(unchanged)" in words.rate_text(RatingResult(HEAT, 4.5, 4.5, 2), "Heat")
    assert words.forget_done(2) == "Done: I deleted 2 ratings. Fresh start!"
