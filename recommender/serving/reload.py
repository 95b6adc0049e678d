"""Which model version is served, and swapping in a newly published one without stopping requests.

A request takes ``watcher.model`` once and uses that snapshot to the end, so a swap (one reference
assignment) never mixes versions inside one answer. A missing or corrupt version leaves the
watcher on the version it had, or on none (the service then serves popularity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from recommender.core.errors import RecommenderError
from recommender.persistence.registry import Registry
from recommender.scoring.model import ServingModel

__all__ = ["FAILED_RETRY_SECONDS", "RELOAD_CHECK_SECONDS", "ModelWatcher", "load_current"]

log = logging.getLogger(__name__)

#: How often (seconds) a request may look at the registry's ``current`` pointer.
RELOAD_CHECK_SECONDS = 5.0
#: A version that failed to load is retried after this long (it may have been repaired).
FAILED_RETRY_SECONDS = 60.0

Loaded = tuple[ServingModel | None, str | None, str]


def load_current(registry: Registry, dataset: str | None) -> Loaded:
    """``registry``'s current version for a catalogue of ``dataset`` (blocking): (model, version, error)."""
    version: str | None = None
    try:
        version = registry.current_version()
        if version is None:
            return None, None, "no model has been published yet"
        model = registry.load_current()
        trained_on = model.metrics.get("dataset") if isinstance(model.metrics, dict) else None
        if dataset and isinstance(trained_on, str) and trained_on != dataset:
            # after a dataset switch its ids name other films (or none): popularity until a retrain
            return (
                None,
                version,
                (
                    f"version {version} was trained on {trained_on}, "
                    f"but the catalogue is {dataset}: "
                    f"serving popular picks until a model is trained on {dataset} (/retrain)"
                ),
            )
        return model, version, ""
    except RecommenderError as exc:  # NoModel: missing, corrupt or half-written
        return None, version, str(exc)
    except Exception as exc:  # serving must survive any broken artifact; the log keeps the traceback
        log.exception("loading model version %s failed", version)
        return None, version, f"{type(exc).__name__}: {exc}"


class ModelWatcher:
    """Holds the serving model; loads the registry's current version on request or when it changes."""

    def __init__(
        self,
        registry: Registry,
        *,
        check_seconds: float = RELOAD_CHECK_SECONDS,
        retry_seconds: float = FAILED_RETRY_SECONDS,
        on_swap: Callable[[ServingModel], None] | None = None,
        dataset: str | None = None,
    ) -> None:
        self.registry = registry
        #: the catalogue's dataset: a version trained on another one knows other movie ids
        self.dataset = dataset
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self._on_swap = on_swap
        self.model: ServingModel | None = None
        self.status = "unavailable: no model loaded yet"
        self._last_check = -math.inf
        self._failed: tuple[str | None, float] | None = None  # (version, monotonic time) of a failure
        self._task: asyncio.Task[None] | None = None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def _load(self) -> Loaded:
        return load_current(self.registry, self.dataset)

    def _install(self, model: ServingModel | None, version: str | None, error: str) -> str | None:
        if model is not None:
            previous = self.version
            self.model = model  # one reference swap: requests in flight keep their own snapshot
            self.status = "ok"
            self._failed = None
            if self._on_swap is not None:
                self._on_swap(model)
            if previous != model.version:
                log.info(
                    "serving model %s (%s), was %s", model.version, model.family, previous or "popularity"
                )
            return model.version
        self._failed = (version, time.monotonic())
        if self.model is None:
            self.status = f"unavailable: {error}"
            log.warning("no usable model (%s); serving popular picks", error)
        else:
            # A newer version that cannot be read must not take away a working one.
            self.status = f"ok; version {version} unavailable: {error}"
            log.warning("model version %s unusable (%s); still serving %s", version, error, self.version)
        return self.version

    def reload(self) -> str | None:
        """Load the registry's current version now (blocking); the version being served."""
        self._last_check = time.monotonic()
        return self._install(*self._load())

    async def reload_async(self, loading: Awaitable[Loaded] | None = None) -> str | None:
        """:meth:`reload` with the file reading done off the event loop; ``loading``: a
        :func:`load_current` of this registry already under way (start-up overlaps it)."""
        self._last_check = time.monotonic()
        loaded = await (loading if loading is not None else asyncio.to_thread(self._load))
        return self._install(*loaded)

    def maybe_reload(self) -> None:
        """Cheap check, at most every ``check_seconds``, for a new version; loads it in the background."""
        now = time.monotonic()
        if now - self._last_check < self.check_seconds:
            return
        if self._task is not None and not self._task.done():
            return
        self._last_check = now
        try:
            current = self.registry.current_version()
        except Exception:
            log.exception("reading the registry's current pointer failed")
            return
        if current is None or current == self.version:
            return
        if (
            self._failed is not None
            and self._failed[0] == current
            and now - self._failed[1] < self.retry_seconds
        ):
            return
        log.info("model version %s was published; loading it in the background", current)
        self._task = asyncio.get_running_loop().create_task(self._background())

    async def _background(self) -> None:
        await self.reload_async()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
