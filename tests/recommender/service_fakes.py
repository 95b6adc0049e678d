"""Small stand-ins for the service's collaborators, and a tiny synthetic model with known structure.

Movies 1-10 (cluster A) and 11-20 (cluster B) point in different directions of the item-factor
space, so a member who likes one cluster must be recommended the rest of it. Movie 40 is in the
catalog but not in the model (the content path). Cluster A is the most popular, B the least, so a
recommendation of B proves the personal path was used and not popularity.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.errors import NoModel
from recommender.registry import Registry
from recommender.types import DATASETS, Movie, RatingScale

CLUSTER_A = list(range(1, 11))
CLUSTER_B = list(range(11, 21))
NEUTRAL = list(range(21, 40))
CONTENT_ONLY = 40
MODEL_MOVIES = CLUSTER_A + CLUSTER_B + NEUTRAL
HALF = DATASETS["ml-latest-small"].scale


def movies() -> list[Movie]:
    out = [Movie(m, f"Action {m}", 1990 + m, ("Action", "Thriller")) for m in CLUSTER_A]
    out += [Movie(m, f"Drama {m}", 1990 + m, ("Drama", "Romance")) for m in CLUSTER_B]
    out += [Movie(m, f"Comedy {m}", 1990 + m, ("Comedy",)) for m in NEUTRAL]
    out.append(Movie(CONTENT_ONLY, "Brand New Drama", 2024, ("Drama",)))
    return out


def popularity() -> dict[int, tuple[int, float, float]]:
    """movie_id -> (count, mean, Bayesian score): A most popular, then neutral, then B."""
    order = CLUSTER_A + NEUTRAL + CLUSTER_B
    return {m: (100 - i, 4.6 - i * 0.04, 4.5 - i * 0.04) for i, m in enumerate(order)}


# ------------------------------------------------------------------------------------- model


@dataclass
class FakeServingModel:
    """A numpy MF with the ServingModel contract (stand-in until scoring.py lands)."""

    version: str
    family: str
    scale: RatingScale
    global_mean: float
    metrics: dict
    trained_at: float
    movie_ids: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    user_keys: list[str] = field(default_factory=list)
    user_factors: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    user_bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        self._index = {int(m): i for i, m in enumerate(self.movie_ids)}
        self._users = {k: i for i, k in enumerate(self.user_keys)}

    def user_vector(self, key: str) -> tuple[np.ndarray, float] | None:
        i = self._users.get(key)
        return None if i is None else (self.user_factors[i], float(self.user_bias[i]))

    def has_movie(self, movie_id: int) -> bool:
        return int(movie_id) in self._index

    def fold_in(self, movie_ids, stars, *, reg: float = 0.1) -> tuple[np.ndarray, float]:
        idx = np.asarray([self._index[int(m)] for m in movie_ids])
        q = self.item_factors[idx]
        x = np.hstack([q, np.ones((len(idx), 1))])
        y = np.asarray(stars, np.float64) - self.global_mean - self.item_bias[idx]
        w = np.linalg.solve(x.T @ x + reg * np.eye(x.shape[1]), x.T @ y)
        return w[:-1].astype(np.float32), float(w[-1])

    def _raw(self, user: tuple[np.ndarray, float]) -> np.ndarray:
        return self.global_mean + user[1] + self.item_bias + self.item_factors @ user[0]

    def predict(self, user, movie_ids) -> np.ndarray:
        idx = [self._index[int(m)] for m in np.atleast_1d(movie_ids)]
        return np.clip(self._raw(user)[idx], self.scale.minimum, self.scale.maximum)

    def predict_content(self, user, genres, year) -> float:
        return float(
            np.clip(self.global_mean + user[1] + 0.1 * len(genres), self.scale.minimum, self.scale.maximum)
        )

    def recommend(self, user, k: int, exclude: Collection[int]) -> list[tuple[int, float]]:
        scores = self._raw(user)
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            if int(self.movie_ids[i]) in exclude:
                continue
            out.append(
                (int(self.movie_ids[i]), float(np.clip(scores[i], self.scale.minimum, self.scale.maximum)))
            )
            if len(out) == k:
                break
        return out

    def similar(self, movie_id: int, k: int) -> list[tuple[int, float]]:
        q = self.item_factors / np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        sims = q @ q[self._index[int(movie_id)]]
        order = [i for i in np.argsort(-sims, kind="stable") if int(self.movie_ids[i]) != movie_id]
        return [(int(self.movie_ids[i]), float(sims[i])) for i in order[:k]]


def make_model(
    version: str,
    *,
    family: str = "mf",
    trained_members: Mapping[int, Iterable[int]] | None = None,
    trained_at: float | None = None,
    load_delay: float = 0.0,
    metrics: dict | None = None,
) -> FakeServingModel:
    """A 4-dim model over MODEL_MOVIES; each trained member's vector points at the cluster given."""
    rng = np.random.default_rng(0)
    factors = np.zeros((len(MODEL_MOVIES), 4), np.float32)
    bias = np.zeros(len(MODEL_MOVIES), np.float32)
    for i, m in enumerate(MODEL_MOVIES):
        if m in CLUSTER_A:
            factors[i, 0], bias[i] = 1.0, 0.3
        elif m in CLUSTER_B:
            factors[i, 1] = 1.0
        else:
            factors[i, 2] = 0.3
    factors += rng.normal(0, 0.05, factors.shape).astype(np.float32)
    keys, vectors = [], []
    for member, cluster in (trained_members or {}).items():
        keys.append(f"member:{member}")
        vectors.append([1.0, 0, 0, 0] if list(cluster) == CLUSTER_A else [0, 1.0, 0, 0])
    model = FakeServingModel(
        version=version,
        family=family,
        scale=HALF,
        global_mean=3.5,
        metrics={"val_rmse": 0.9} if metrics is None else metrics,
        trained_at=time.time() - 60 if trained_at is None else trained_at,
        movie_ids=np.asarray(MODEL_MOVIES, np.int64),
        item_factors=factors,
        item_bias=bias,
        user_keys=keys,
        user_factors=np.asarray(vectors, np.float32).reshape(len(keys), 4),
        user_bias=np.zeros(len(keys), np.float32),
    )
    model.load_delay = load_delay  # type: ignore[attr-defined]
    return model


def _save(model: FakeServingModel, folder: Path) -> None:
    np.savez(
        folder / "serving.npz",
        movie_ids=model.movie_ids,
        item_factors=model.item_factors,
        item_bias=model.item_bias,
        user_factors=model.user_factors,
        user_bias=model.user_bias,
    )
    meta = {
        "user_keys": model.user_keys,
        "version": model.version,
        "family": model.family,
        "global_mean": model.global_mean,
        "trained_at": model.trained_at,
        "load_delay": getattr(model, "load_delay", 0.0),
    }
    (folder / "idmaps.json").write_text(json.dumps(meta))
    (folder / "metrics.json").write_text(json.dumps(model.metrics))


def fake_loader(folder: Path) -> FakeServingModel:
    try:
        meta = json.loads((folder / "idmaps.json").read_text())
        arrays = np.load(folder / "serving.npz")
        time.sleep(meta["load_delay"])  # simulates reading big arrays, to widen the reload window
        return FakeServingModel(
            version=meta["version"],
            family=meta["family"],
            scale=HALF,
            global_mean=meta["global_mean"],
            metrics={},
            trained_at=meta["trained_at"],
            movie_ids=arrays["movie_ids"],
            item_factors=arrays["item_factors"],
            item_bias=arrays["item_bias"],
            user_keys=meta["user_keys"],
            user_factors=arrays["user_factors"],
            user_bias=arrays["user_bias"],
        )
    except (OSError, ValueError, KeyError) as exc:
        raise NoModel(f"corrupt: {exc}") from exc


def publish(registry: Registry, model: FakeServingModel) -> None:
    """Store ``model`` as a committed version and make it current, as train.py does."""
    registry.store(model.version, lambda folder: _save(model, folder))
    registry.set_current(model.version)


# ----------------------------------------------------------------------------- storage, catalog


@dataclass(frozen=True, slots=True)
class StoredRating:
    user_id: int
    movie_id: int
    stars: float
    guild_id: int | None
    rated_at: float


class FakeStorage:
    """In-memory Storage with the contract's methods the service uses."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], StoredRating] = {}
        self.versions: list[tuple] = []
        self._clock = time.time()

    async def upsert_rating(self, user_id, movie_id, stars, guild_id, rated_at=None):
        # Strictly increasing times, as a real clock would give across calls.
        self._clock = max(self._clock + 1e-3, time.time())
        new = StoredRating(
            user_id, movie_id, float(stars), guild_id, self._clock if rated_at is None else rated_at
        )
        old = self.rows.get((user_id, movie_id))
        self.rows[(user_id, movie_id)] = new
        return new, (old.stars if old else None)

    async def user_ratings(self, user_id: int) -> list[StoredRating]:
        mine = [r for (u, _), r in self.rows.items() if u == user_id]
        return sorted(mine, key=lambda r: -r.rated_at)

    async def delete_user(self, user_id: int) -> int:
        keys = [k for k in self.rows if k[0] == user_id]
        for k in keys:
            del self.rows[k]
        return len(keys)

    async def count_ratings(self, since: float | None = None) -> int:
        return sum(1 for r in self.rows.values() if since is None or r.rated_at > since)

    async def stats(self) -> dict[str, int]:
        return {"ratings": len(self.rows), "members": len({u for u, _ in self.rows}), "movies": len(movies())}

    async def record_model_version(self, version, family, metrics, trained_at, published) -> None:
        self.versions.append((version, family, metrics, trained_at, published))


class FakeCatalog:
    def __init__(self, items: Iterable[Movie]) -> None:
        self._movies = {m.movie_id: m for m in items}

    def get(self, movie_id: int) -> Movie | None:
        return self._movies.get(movie_id)

    def __len__(self) -> int:
        return len(self._movies)


class FakeWorker:
    """Publishes ``model`` when released, emitting the train.py progress events."""

    def __init__(self, registry: Registry, model: FakeServingModel) -> None:
        self.registry, self.model = registry, model
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.trained_at = model.trained_at

    async def run(self, extra_args=(), *, on_progress=None, force: bool = False) -> dict:
        emit = on_progress or (lambda event: asyncio.sleep(0))
        await emit({"event": "start"})
        self.started.set()
        await self.release.wait()
        await emit({"event": "epoch", "epoch": 1, "epochs": 1, "loss": 1.0, "val_loss": 1.0})
        await asyncio.to_thread(publish, self.registry, self.model)
        done = {
            "event": "done",
            "published": True,
            "version": self.model.version,
            "reason": "first model",
            "metrics": {"val_rmse": 0.9},
            "plot": None,
        }
        await emit(done)
        return done


# TEMPORARY until recommender/scoring.py lands (remove before the final commit)
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402

try:
    import recommender.scoring  # noqa: F401
except ModuleNotFoundError:
    _stub = _types.ModuleType("recommender.scoring")
    _stub.member_key = lambda user_id: f"member:{int(user_id)}"
    _stub.ServingModel = FakeServingModel
    _sys.modules["recommender.scoring"] = _stub
