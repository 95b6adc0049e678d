"""Movie posters from TMDB, optional: an embed thumbnail when ``TMDB_API_KEY`` is set.

:class:`PosterClient` asks ``GET {api_url}/movie/{tmdb_id}`` for a movie's ``poster_path`` and
turns it into ``{image_url}{poster_path}``. It is built for a command that must answer anyway:
every call is bounded by a short timeout (waiting for a free request slot included), at most a
few requests are in flight, answers are kept in a bounded LRU cache with an expiry (a movie
without a poster too), and any failure is one log line and ``None``, never an exception.

The key is either a v3 API key (sent as the ``api_key`` query parameter) or a v4 read access
token (a JWT, sent as ``Authorization: Bearer``); which one is told from its shape. It never
reaches a log line: failures are logged by movie id and a short reason, never with the URL or
the exception's text (aiohttp's errors carry the request URL, query string included).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from recommender.core.config import TMDB_API_URL, TMDB_IMAGE_URL, Secret

__all__ = ["PosterClient", "is_bearer_token"]

log = logging.getLogger(__name__)

#: TMDB poster paths look like ``/abc123XYZ.jpg``; anything else is not put into an embed.
_POSTER_PATH = re.compile(r"^/[A-Za-z0-9_.-]{1,200}$")
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def is_bearer_token(key: str) -> bool:
    """A v4 read access token (a JWT: three base64url parts); anything else is a v3 API key."""
    return key.startswith("eyJ") and bool(_JWT.match(key))


class _Failed(Exception):
    """A lookup that gave no poster; ``reason`` is safe to log, ``retry`` says to cache it briefly."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class PosterClient:
    """``poster_url(tmdb_id)``: the poster's image URL, or None. Use as ``async with`` or ``close()``."""

    def __init__(
        self,
        api_key: Secret,
        *,
        api_url: str = TMDB_API_URL,
        image_url: str = TMDB_IMAGE_URL,
        timeout: float = 2.0,
        max_in_flight: int = 4,
        cache_size: int = 4096,
        ttl: float = 24 * 3600.0,
        missing_ttl: float = 6 * 3600.0,
        failed_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = api_key
        self._api_url = api_url.rstrip("/")
        self._image_url = image_url.rstrip("/")
        self.timeout = timeout
        self._max_in_flight = max(1, max_in_flight)
        self._slots: asyncio.Semaphore | None = None
        self._cache: OrderedDict[int, tuple[float, str | None]] = OrderedDict()  # id -> (expiry, url)
        self._cache_size = max(1, cache_size)
        # A poster rarely changes; "no poster" may be filled in later; a timeout or 5xx may pass soon.
        self._ttl, self._missing_ttl, self._failed_ttl = ttl, missing_ttl, failed_ttl
        self._clock = clock
        self._pending: dict[int, asyncio.Future[str | None]] = {}  # one request per id at a time
        self._session: Any = None  # aiohttp.ClientSession, made on first use inside the event loop
        #: requests actually sent (tests check the cache and the "off" switch with it)
        self.requests = 0

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    async def __aenter__(self) -> PosterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def poster_url(self, tmdb_id: int) -> str | None:
        """The poster of TMDB movie ``tmdb_id``, None without a key, a poster or an answer in time."""
        if not self.enabled or not isinstance(tmdb_id, int) or tmdb_id <= 0:
            return None
        now = self._clock()
        cached = self._cache.get(tmdb_id)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(tmdb_id)
            return cached[1]
        if (pending := self._pending.get(tmdb_id)) is not None:
            # Shielded: a caller giving up does not cancel the request others wait for. The future
            # only ever gets a result, so this never raises anything but this caller's cancellation.
            return await asyncio.shield(pending)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[tmdb_id] = future
        try:
            url = await self._lookup(tmdb_id)
        finally:
            del self._pending[tmdb_id]
            if not future.done():
                future.set_result(self._cache.get(tmdb_id, (0.0, None))[1])
        return url

    async def _lookup(self, tmdb_id: int) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                url = await self._fetch(tmdb_id)
        except _Failed as failed:
            # A refused key or an outage is worth a warning; a movie without a poster is not.
            log.log(
                logging.WARNING if failed.retry else logging.INFO,
                "no TMDB poster for movie %d: %s",
                tmdb_id,
                failed.reason,
            )
            self._remember(tmdb_id, None, self._failed_ttl if failed.retry else self._missing_ttl)
            return None
        except TimeoutError:
            log.warning("no TMDB poster for movie %d: no answer within %.1f s", tmdb_id, self.timeout)
            self._remember(tmdb_id, None, self._failed_ttl)
            return None
        except Exception as exc:  # a connection error, or anything aiohttp raises: never into a command
            log.warning("no TMDB poster for movie %d: %s", tmdb_id, type(exc).__name__)
            self._remember(tmdb_id, None, self._failed_ttl)
            return None
        self._remember(tmdb_id, url, self._ttl)
        return url

    def _remember(self, tmdb_id: int, url: str | None, ttl: float) -> None:
        self._cache[tmdb_id] = (self._clock() + ttl, url)
        self._cache.move_to_end(tmdb_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _fetch(self, tmdb_id: int) -> str:
        import aiohttp  # comes with discord.py; imported here so the catalogue code never needs it

        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        key = self._key.get()
        headers = {"Accept": "application/json"}
        params: dict[str, str] = {}
        if is_bearer_token(key):
            headers["Authorization"] = f"Bearer {key}"
        else:
            params["api_key"] = key
        async with self._slots:
            self.requests += 1
            async with self._session.get(
                f"{self._api_url}/movie/{tmdb_id}", params=params, headers=headers, allow_redirects=False
            ) as response:
                if response.status != 200:
                    # 404: TMDB has no such movie (links.csv is old), worth remembering for longer.
                    raise _Failed(f"HTTP {response.status}", retry=response.status != 404)
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    raise _Failed("the answer is not JSON", retry=False) from None
        path = body.get("poster_path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not _POSTER_PATH.match(path):
            raise _Failed("TMDB has no poster for it", retry=False)
        return f"{self._image_url}{path}"
