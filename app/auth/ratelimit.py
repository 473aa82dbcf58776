"""Attempt limits for login and registration.

Counted in Redis so every replica shares them (a fixed window per key, one
atomic script call); while Redis is unusable each process falls back to its
own in-memory counters, so throttling degrades but never fails open.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request
from redis.asyncio import Redis

from app.auth.exceptions import TooManyAttempts
from app.platform.redis import RedisGuard, Unavailable

# INCR, start the window on the first hit, and report the time left in it.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""
MEMORY_MAX_KEYS = 100_000


class MemoryWindows:
    """The same fixed windows, in this process only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def hit(self, key: str, window: float) -> tuple[int, float]:
        now = self._clock()
        count, resets_at = self._windows.get(key, (0, now + window))
        if resets_at <= now:
            count, resets_at = 0, now + window
        self._windows[key] = (count + 1, resets_at)
        self._windows.move_to_end(key)
        while len(self._windows) > MEMORY_MAX_KEYS:
            self._windows.popitem(last=False)
        return count + 1, resets_at - now


class RateLimiter:
    def __init__(self, guard: RedisGuard | None, enabled: bool = True) -> None:
        self._guard = guard
        self._enabled = enabled
        self._memory = MemoryWindows()
        self._script = guard.client.register_script(_HIT) if guard else None

    async def check(self, scope: str, identity: str, limit: int, window_seconds: int) -> None:
        """Counts one attempt; raises 429 with Retry-After past `limit`."""
        if not self._enabled:
            return
        # Hashed: keys never hold addresses or names in clear.
        key = f"rl:{scope}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
        count, remaining = await self._hit(key, window_seconds)
        if count > limit:
            raise TooManyAttempts(retry_after=math.ceil(remaining))

    async def _hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        if self._guard is not None and self._script is not None:
            script = self._script

            async def hit(redis: Redis) -> list[int]:
                result: list[int] = await script(keys=[key], args=[window_seconds * 1000], client=redis)
                return result

            result = await self._guard.call("ratelimit", hit)
            if not isinstance(result, Unavailable):
                count, ttl_ms = result
                return int(count), int(ttl_ms) / 1000
        return self._memory.hit(key, window_seconds)


def client_address(request: Request) -> str:
    """The caller's address; behind a proxy, uvicorn's --proxy-headers has
    already taken it from X-Forwarded-For (trusted hops only)."""
    return request.client.host if request.client else "unknown"
