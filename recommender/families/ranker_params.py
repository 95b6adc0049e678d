"""The ranking model's hyper-parameters (``None`` = chosen on validation), typed and validated."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from recommender.families.base import coerce_overrides

__all__ = ["FALLBACK_STAR_WEIGHTS", "RankerParams"]

#: the table of a run with too few newcomers to choose on: chosen once on ml-latest-small
#: cold-start validation users (benchmarks/RESULTS.md)
FALLBACK_STAR_WEIGHTS = "5:1.0,10:2.0"


@dataclass(frozen=True)
class RankerParams:
    """Hyper-parameters of the ranking model (``None`` = chosen on validation)."""

    dim: int = 128
    min_count: int = 5  # movies with fewer training ratings are neither ranked nor read
    tau: float = 5.0  # recency decay, in ratings
    epochs: int = 20
    patience: int = 3
    batch_size: int = 128
    lr: float = 0.001
    dropout: float = 0.3  # share of a history's movies hidden from each training example
    window: int = 10  # later movies a training example predicts
    cuts_per_rating: float = 0.1  # training examples per user and epoch, per rating of theirs
    max_cuts: int = 20  # ... at most
    max_examples: int = 200_000  # per epoch (a random subset beyond): bounds an epoch on big datasets
    val_last: int = 10  # each user's latest ratings held out for validation
    val_users: int = 3000  # validation users scored (a sample on big datasets)
    ease_lambda: float | None = None
    ease_min_count: int = 3  # movies with fewer training ratings get no item-item row
    ease_max_items: int = 8000  # the most-rated movies (bounds the dense solve)
    ease_neighbours: int = 200  # strongest weights kept per movie
    blend: float | None = None
    #: width of the sequence part as served (a projection, ``RankingModel.reduced``); None: the
    #: narrowest whose validation NDCG@5 is within ``rank_tolerance`` of the full width's
    serve_rank: int | None = None
    rank_tolerance: float = 0.01
    #: the rating model's share of the served ranking by the member's rating count, "n:w,n:w", or
    #: "auto": chosen in each run on newcomers (``families/newcomers.py``)
    star_weights: str = "auto"
    newcomers: float = 0.1  # share of the users held out whole to choose the star weights on
    max_newcomers: int = 300
    #: the rating model fitted without the newcomers reads at most this many ratings (a sample of
    #: users beyond): it bounds what the choice adds to a run on big datasets
    newcomer_fit_ratings: int = 2_000_000
    #: refit both parts on every rating after choosing; None: only when the validation held back
    #: a share of the ratings worth it (``ranker.REFIT_MIN_SHARE``)
    refit: bool | None = None

    def __post_init__(self) -> None:
        checks = {
            "dim": self.dim >= 1,
            "min_count": self.min_count >= 1,
            "tau": self.tau > 0,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "dropout": 0 <= self.dropout < 1,
            "window": self.window >= 1,
            "cuts_per_rating": self.cuts_per_rating > 0,
            "max_cuts": self.max_cuts >= 1,
            "max_examples": self.max_examples >= 1,
            "val_last": self.val_last >= 1,
            "val_users": self.val_users >= 1,
            "ease_min_count": self.ease_min_count >= 1,
            "ease_max_items": self.ease_max_items >= 0,
            "ease_neighbours": self.ease_neighbours >= 1,
            "newcomers": 0 <= self.newcomers <= 0.5,
            "max_newcomers": self.max_newcomers >= 0,
            "newcomer_fit_ratings": self.newcomer_fit_ratings >= 1,
        }
        if self.ease_lambda is not None:
            checks["ease_lambda"] = self.ease_lambda > 0
        if self.blend is not None:
            checks["blend"] = self.blend >= 0
        if self.serve_rank is not None:
            checks["serve_rank"] = self.serve_rank >= 1
        checks["rank_tolerance"] = 0 <= self.rank_tolerance < 1
        try:
            self.star_weight_table()
        except ValueError:
            checks["star_weights"] = False
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ranker: {name} is out of range, got {getattr(self, name)!r}")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> Self:
        """The defaults with ``overrides`` applied (values may be CLI text; ``auto`` is None)."""
        return cls(**coerce_overrides(cls, "ranker", overrides))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def choose_star_weights(self) -> bool:
        return self.star_weights.strip() == "auto"

    def star_weight_table(self) -> tuple[tuple[int, float], ...]:
        """``star_weights`` parsed: ``((5, 2.0), (10, 1.0), ...)``, ascending counts, weights >= 0.

        For "auto", the table used when a run has too few newcomers to choose on.
        """
        table = []
        text = FALLBACK_STAR_WEIGHTS if self.choose_star_weights else self.star_weights
        for part in filter(None, (x.strip() for x in text.split(","))):
            n, _, w = part.partition(":")
            table.append((int(n), float(w)))
        counts = [n for n, _ in table]
        if counts != sorted(set(counts)) or any(w < 0 or not np.isfinite(w) for _, w in table):
            raise ValueError(
                f"star_weights must be ascending n:w pairs with w >= 0, got {self.star_weights!r}"
            )
        return tuple(table)
