"""Rate limiting with ``limits`` (moving window), in memory or in Redis.

One ``RateLimiter`` per process; with ``redis://`` storage every process of
the service shares the same counters.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


def _async_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    def __init__(self, storage_uri: str, *, prefix: str = "ntm") -> None:
        self._storage = storage_from_string(_async_uri(storage_uri), key_prefix=prefix)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, rate: str) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = parse(rate)
        return item

    async def hit(self, rate: str, key: str) -> Decision:
        """Count one request of ``key`` against ``rate`` (e.g. ``100/minute``)."""
        item = self._item(rate)
        allowed = await self._limiter.hit(item, key)
        stats = await self._limiter.get_window_stats(item, key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), reset)

    async def close(self) -> None:
        """Release the Redis connections (memory storage holds none)."""
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            result = pool.disconnect()
            if inspect.isawaitable(result):
                await result
            await asyncio.sleep(0.01)  # let the transports finish closing on this loop
