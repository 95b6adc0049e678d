"""The service's group pick: every member served as ``/recommend`` serves them, then one choice.

A mixin of :class:`recommender.serving.service.RecommenderService` (kept apart to keep files short).
Each member's taste comes from ``paths.choose_taste`` (trained, folded in, or the crowd's view), and
``groups.GroupScorer`` scores the whole group in one product. What is built once per model version
(the scorer, the crowd's stars) and once per filter (which model movies the catalogue has and the
filter keeps) is cached, so a request costs one read of the database and the product.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.scoring.model import ServingModel
from recommender.serving.catalog import Catalog
from recommender.serving.codes import PickFilter, ServingPath
from recommender.serving.group_contract import MAX_GROUP, GroupMovie, GroupPicks, GroupTaste, InvalidGroup
from recommender.serving.groups import GroupMember, GroupReason, GroupScorer, MemberKind, crowd_stars
from recommender.serving.paths import Keep, Popularity, Taste, choose_taste

if TYPE_CHECKING:
    from recommender.persistence.storage import Storage, StoredRating
    from recommender.serving.caches import FoldCache, RatingsCache
    from recommender.serving.reload import ModelWatcher

__all__ = ["GroupPicking"]

log = logging.getLogger(__name__)

#: Filters whose movie masks are kept per model version (genres x decades is well under this).
MASKS_KEPT = 64


@dataclass
class _Prepared:
    """What one model version and one catalogue need for group picks, built off the event loop."""

    model: ServingModel
    catalog: Catalog
    scorer: GroupScorer
    crowd: np.ndarray  # the crowd's stars over the model's movies
    masks: dict[PickFilter | None, np.ndarray] = field(default_factory=dict)


def _mask(model: ServingModel, catalog: Catalog, keep: Keep) -> np.ndarray:
    """Model movies the catalogue has (an admin may have removed one) and the filter keeps."""
    ids = model.movie_ids.tolist()

    def ok(movie_id: int) -> bool:
        movie = catalog.get(movie_id)
        return movie is not None and (keep is None or keep(movie))

    return np.fromiter((ok(m) for m in ids), dtype=bool, count=len(ids))


def _build(model: ServingModel, catalog: Catalog, popularity: dict[int, float]) -> _Prepared:
    crowd = crowd_stars(model.movie_ids, popularity, float(model.global_mean))
    return _Prepared(model, catalog, GroupScorer(model), crowd)


def _member(taste: Taste) -> GroupMember:
    if taste.user is None:
        return GroupMember(MemberKind.CROWD)
    kind = MemberKind.TRAINED if taste.path is ServingPath.TRAINED else MemberKind.FOLD_IN
    return GroupMember(kind, taste.user)


class GroupPicking:
    storage: Storage
    catalog: Catalog
    watcher: ModelWatcher
    _popularity: Popularity
    _folds: FoldCache
    _ratings: RatingsCache
    _imported_at: dict[int, float]
    _prepared: _Prepared | None = None

    async def group_picks(
        self,
        user_ids: Sequence[int],
        k: int = 3,
        *,
        pick_filter: PickFilter | None = None,
        exclude: Collection[int] = (),
    ) -> GroupPicks:
        members = list(dict.fromkeys(int(u) for u in user_ids))
        if not members:
            raise InvalidGroup("nobody is in it")
        if len(members) > MAX_GROUP:
            raise InvalidGroup(f"{len(members)} members is more than {MAX_GROUP}")
        if k < 1:
            raise InvalidGroup("no movies were asked for")
        self.watcher.maybe_reload()
        model = self.watcher.model  # one snapshot for the whole request
        prints, hidden = await self.storage.group_snapshot(members)
        rated = await self._group_ratings(members, prints)
        blocked = set(exclude) | hidden
        for rows in rated.values():
            blocked.update(r.movie_id for r in rows)
        tastes = [choose_taste(model, u, rated[u], self._folds, self._imported_at.get(u)) for u in members]
        served = tuple(
            GroupTaste(u, t.path, t.n_ratings, t.popularity_reason)
            for u, t in zip(members, tastes, strict=True)
        )
        filters = pick_filter if pick_filter is not None and pick_filter.active else None
        if model is None:
            return self._popular_for_group(served, k, blocked, filters)
        prepared = await self._prepare(model, filters)
        allowed = prepared.masks[filters].copy()
        index = model.movie_index(blocked)
        allowed[index[index >= 0]] = False
        group = [_member(t) for t in tastes]
        crowd = prepared.crowd if any(t.user is None for t in tastes) else None
        choice = prepared.scorer.pick(group, crowd=crowd, allowed=allowed, k=k)
        picks = []
        for pick in choice.picks:
            movie = prepared.catalog.get(pick.movie_id)
            if movie is not None:  # the mask came from this catalogue: always true
                picks.append(GroupMovie(movie, pick.score, pick.per_member))
        return GroupPicks(tuple(picks), served, choice.reasons, choice.param, model.version)

    async def _group_ratings(
        self, members: Sequence[int], prints: dict[int, tuple[int, float | None]]
    ) -> dict[int, Sequence[StoredRating]]:
        """Every member's ratings: the cached lists their fingerprints still match; others re-read."""
        rated: dict[int, Sequence[StoredRating]] = {}
        for user in members:
            cached = self._ratings.get(user, prints[user])
            if cached is None:
                cached = self._ratings.put(user, await self.storage.user_ratings(user))
            rated[user] = cached
        return rated

    async def _prepare(self, model: ServingModel, filters: PickFilter | None) -> _Prepared:
        """The cached scorer, crowd and mask for this model and catalogue; built once each."""
        catalog = self.catalog
        prepared = self._prepared
        if prepared is None or prepared.model is not model:
            table = {m: entry[2] for m, entry in self._popularity.table.items()}
            prepared = await asyncio.to_thread(_build, model, catalog, table)
        elif prepared.catalog is not catalog:  # an admin's change: the masks name other movies
            prepared = _Prepared(model, catalog, prepared.scorer, prepared.crowd)
        if filters not in prepared.masks:
            if len(prepared.masks) >= MASKS_KEPT:
                prepared.masks.clear()
            keep = filters.matches if filters is not None else None
            prepared.masks[filters] = await asyncio.to_thread(_mask, model, catalog, keep)
        self._prepared = prepared
        return prepared

    def _popular_for_group(
        self, served: tuple[GroupTaste, ...], k: int, blocked: set[int], filters: PickFilter | None
    ) -> GroupPicks:
        """No model: everyone has the crowd's view, so the picks are the most popular movies left."""
        keep = filters.matches if filters is not None else None
        scale = self._popularity.scale
        picks = tuple(
            GroupMovie(p.movie, p.stars, (scale.clip(p.stars),) * len(served))
            for p in self._popularity.picks(k, blocked, self.catalog, keep)
        )
        reasons = [GroupReason.CROWD_VIEW]
        if not picks:
            reasons.append(GroupReason.NO_CANDIDATES)
        elif len(picks) < k:
            reasons.append(GroupReason.FEWER_THAN_K)
        return GroupPicks(picks, served, tuple(reasons), None, None)
