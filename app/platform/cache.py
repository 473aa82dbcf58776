"""Cache-aside with two levels: an in-process LRU in front of Redis.

- A Redis hit costs about as much as a primary-key read (measured in
  bench/README.md); the in-process level is what makes a hit cheap.
- Freshness: a committed write invalidates the reads that depend on what it
  changed (declared once, see app/platform/invalidation.py). An
  invalidation drops the key here, deletes it in Redis and is published on a
  channel every replica listens to, so their in-process copies go too. The
  in-process level only serves while that channel is connected; without it a
  replica could miss an invalidation.
- Stampedes: concurrent misses in one process share one computation; across
  processes a Redis lease (SET NX) lets one compute while the others wait
  briefly for its result. The lease also stops a computation that started
  before an invalidation from writing its stale result after it.
- Without REDIS_URL the in-process level serves alone (one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from app.platform.local_cache import LocalCache
from app.platform.redis import RedisGuard, Unavailable

log = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "storefront:cache:invalidate"
LEASE_MS = 5_000
LEASE_WAIT_SECONDS = 0.5
LEASE_POLL_SECONDS = 0.02

# Store only if we still hold the lease: an invalidation deletes the lease, so
# a value computed from data older than that invalidation is dropped.
_SET_IF_LEASED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
# A miss takes the lease only if the value is still missing, in one step: a
# plain GET then SET NX would let a reader whose GET preceded another
# process's store take the lease that store just released, and compute again.
# Returns the value if it is there, 1 when leased, 0 when someone else holds it.
_GET_OR_LEASE = """
local value = redis.call('GET', KEYS[1])
if value then return value end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

CacheStatus = Literal["ok", "degraded", "disabled"]


@dataclass(frozen=True)
class Cached:
    value: bytes
    hit: bool


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter("cache_hits_total", "Reads served from the cache", ["cache", "level"], registry=registry)
        self.misses = Counter("cache_misses_total", "Reads that had to compute the value", ["cache"], registry=registry)


def _family(key: str) -> str:
    """Metrics label: "v1:product:42" -> "product"."""
    parts = key.split(":")
    return parts[1] if len(parts) > 2 else parts[0]


@dataclass(frozen=True)
class _Shared:
    """The Redis side of the cache, present only when REDIS_URL is set."""

    guard: RedisGuard
    listener: Redis
    get_or_lease: AsyncScript
    set_if_leased: AsyncScript
    release_lease: AsyncScript


class Cache:
    def __init__(
        self,
        metrics: CacheMetrics,
        *,
        guard: RedisGuard | None,
        listener: Redis | None,
        local_max_entries: int,
        local_max_bytes: int = 32 * 2**20,
    ) -> None:
        self._metrics = metrics
        self._shared = (
            _Shared(
                guard=guard,
                listener=listener,
                get_or_lease=guard.client.register_script(_GET_OR_LEASE),
                set_if_leased=guard.client.register_script(_SET_IF_LEASED),
                release_lease=guard.client.register_script(_RELEASE_LEASE),
            )
            if guard is not None and listener is not None
            else None
        )
        self._local = LocalCache(local_max_entries, local_max_bytes)
        self._inflight: dict[str, asyncio.Future[Cached]] = {}
        # Invalidations that could not reach Redis; Redis is not read until
        # they have been delivered.
        self._undelivered: set[str] = set()
        self._subscribed = False
        self._listener_task: asyncio.Task[None] | None = None
        if self._shared is not None:
            self._shared.guard.on_circuit_open(self._on_redis_trouble)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        if self._shared is not None:
            self._listener_task = asyncio.create_task(self._listen(self._shared.listener), name="cache-listener")

    async def stop(self) -> None:
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task

    def _on_redis_trouble(self) -> None:
        # The listener's connection may be dead without knowing it: restart it,
        # and serve nothing from the in-process level until it is back.
        self._subscribed = False
        self._local.clear()
        if self._listener_task is not None and self._shared is not None:
            self._listener_task.cancel()
            self._listener_task = asyncio.create_task(self._listen(self._shared.listener), name="cache-listener")

    async def _listen(self, client: Redis) -> None:
        backoff = 0.1
        while True:
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(INVALIDATION_CHANNEL)
                while (await pubsub.get_message(timeout=1.0) or {}).get("type") != "subscribe":
                    pass
                # Messages published while we were away are lost: start empty.
                self._local.clear()
                self._subscribed = True
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message["type"] == "message":
                        for key in message["data"].decode().split("\n"):
                            self._local.invalidate(key)
            except (RedisError, OSError) as exc:
                log.info("cache invalidation listener disconnected", extra={"error": type(exc).__name__})
            finally:
                self._subscribed = False
                self._local.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    # -- reads ---------------------------------------------------------------

    @property
    def _local_enabled(self) -> bool:
        if self._shared is None:
            return True
        return self._subscribed and self._shared.guard.healthy

    async def get_or_compute(self, key: str, ttl: int, compute: Callable[[], Awaitable[bytes]]) -> Cached:
        if self._local_enabled and (value := self._local.get(key)) is not None:
            self._metrics.hits.labels(_family(key), "local").inc()
            return Cached(value, hit=True)
        while (pending := self._inflight.get(key)) is not None:
            # Another request of this process is computing this key: share it.
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if (current is not None and current.cancelling()) or not pending.cancelled():
                    raise
                # The leader was cancelled (its client went away): try again.
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume_outcome)
        self._inflight[key] = future
        try:
            result = await self._fetch(key, ttl, compute)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
            else:
                future.cancel()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _fetch(self, key: str, ttl: int, compute: Callable[[], Awaitable[bytes]]) -> Cached:
        generation = self._local.generation(key)
        shared = self._shared
        if shared is None:
            value = await compute()
            self._local.put(key, value, ttl, generation)
            return self._miss(key, value)
        if not await self._deliver_undelivered(shared):
            return self._miss(key, await compute())
        guard = shared.guard

        # One round trip: the stored value, else a lease to compute it (1),
        # else 0 (another request holds the lease). A plain GET first would
        # cost every miss a round trip more (bench/README.md).
        lease_key = f"{key}:lease"
        token = secrets.token_hex(8)
        leased = await guard.call(
            "get_or_lease", lambda r: shared.get_or_lease(keys=[key, lease_key], args=[token, LEASE_MS], client=r)
        )
        if isinstance(leased, bytes):
            return self._hit(key, leased, ttl, generation)
        if leased == 0:
            # Someone else is computing it: wait a little for their result.
            deadline = asyncio.get_running_loop().time() + LEASE_WAIT_SECONDS
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(LEASE_POLL_SECONDS)
                cached = await guard.call("get", lambda r: r.get(key))
                if isinstance(cached, bytes):
                    return self._hit(key, cached, ttl, generation)
                if isinstance(cached, Unavailable):
                    break
            return self._miss(key, await compute())
        if isinstance(leased, Unavailable):
            return self._miss(key, await compute())

        try:
            value = await compute()
        except BaseException:
            await guard.call("release", lambda r: shared.release_lease(keys=[lease_key], args=[token], client=r))
            raise
        stored = await guard.call(
            "set", lambda r: shared.set_if_leased(keys=[key, lease_key], args=[token, value, ttl * 1000], client=r)
        )
        if stored == 1 and self._local_enabled:
            self._local.put(key, value, ttl, generation)
        return self._miss(key, value)

    def _hit(self, key: str, value: bytes, ttl: int, generation: tuple[int, int]) -> Cached:
        if self._local_enabled:
            self._local.put(key, value, ttl, generation)
        self._metrics.hits.labels(_family(key), "redis").inc()
        return Cached(value, hit=True)

    def _miss(self, key: str, value: bytes) -> Cached:
        self._metrics.misses.labels(_family(key)).inc()
        return Cached(value, hit=False)

    # -- writes --------------------------------------------------------------

    async def invalidate(self, *keys: str) -> None:
        """Call after the write committed. Never raises."""
        for key in keys:
            self._local.invalidate(key)
        if self._shared is not None:
            self._undelivered.update(keys)
            await self._deliver_undelivered(self._shared)

    async def _deliver_undelivered(self, shared: _Shared) -> bool:
        """Sends pending invalidations; False while Redis cannot be trusted."""
        if not self._undelivered:
            return shared.guard.usable
        keys = sorted(self._undelivered)

        async def send(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.delete(*keys, *(f"{key}:lease" for key in keys))
                pipe.publish(INVALIDATION_CHANNEL, "\n".join(keys))
                await pipe.execute()

        if isinstance(await shared.guard.call("invalidate", send), Unavailable):
            return False
        self._undelivered.difference_update(keys)
        return True

    async def status(self) -> CacheStatus:
        if self._shared is None:
            return "disabled"
        return "ok" if await self._shared.guard.ping() else "degraded"


def _consume_outcome(future: asyncio.Future[Cached]) -> None:
    # Mark the outcome as retrieved even when no other request waited for it.
    if not future.cancelled():
        future.exception()
