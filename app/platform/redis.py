"""Redis clients, and the guard every Redis call goes through.

A slow or dead Redis must cost little and never fail a request: each call is
bounded by REDIS_TIMEOUT, failures are counted, and after a few in a row a
circuit breaker skips Redis altogether for a cool-down period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.platform.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def create_redis(settings: Settings, *, blocking_reads: bool = False) -> Redis | None:
    """A client with short timeouts, no hidden retries and a blocking pool.

    `blocking_reads` is for the pub/sub listener, which waits on its socket
    for messages and must not time out while the channel is quiet.
    """
    if not settings.redis_url:
        return None
    timeout = settings.redis_timeout
    # A blocking pool waits (briefly) for a free connection instead of raising
    # when max_connections is reached; retries are off so a dead Redis costs one
    # short timeout, not several.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=timeout,
        socket_timeout=None if blocking_reads else timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
        health_check_interval=10,
    )
    # from_pool: the client owns the pool, so aclose() closes its connections too.
    return Redis.from_pool(pool)


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def allow(self) -> bool:
        # Once the cool-down has passed, calls go through again (half-open);
        # the next failure re-opens at once because the count is still high.
        return not self.is_open

    def record_success(self) -> None:
        self._failures = 0

    def record_failure(self) -> bool:
        """Returns True when this failure opened the circuit."""
        self._failures += 1
        if self._failures < self.threshold:
            return False
        was_open = self.is_open
        self._open_until = self._clock() + self.cooldown
        return not was_open


class RedisMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.errors = Counter(
            "cache_errors_total", "Redis calls that failed or timed out", ["operation"], registry=registry
        )
        self.circuit_open = Gauge("cache_circuit_open", "1 while the Redis circuit breaker is open", registry=registry)


class Unavailable:
    """Returned instead of a result when Redis could not be used."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = Unavailable()


class RedisGuard:
    def __init__(self, client: Redis, settings: Settings, metrics: RedisMetrics) -> None:
        self.client = client
        self.timeout = settings.redis_timeout
        self.breaker = CircuitBreaker(settings.cache_breaker_threshold, settings.cache_breaker_cooldown_seconds)
        self._metrics = metrics
        self._on_open: list[Callable[[], None]] = []

    def on_circuit_open(self, callback: Callable[[], None]) -> None:
        self._on_open.append(callback)

    @property
    def usable(self) -> bool:
        return self.breaker.allow()

    async def call(self, operation: str, command: Callable[[Redis], Awaitable[T]]) -> T | Unavailable:
        if not self.breaker.allow():
            return UNAVAILABLE
        try:
            async with asyncio.timeout(self.timeout):
                result = await command(self.client)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._metrics.errors.labels(operation).inc()
            if self.breaker.record_failure():
                log.warning("redis circuit opened", extra={"operation": operation, "error": type(exc).__name__})
                self._metrics.circuit_open.set(1)
                for callback in self._on_open:
                    callback()
            return UNAVAILABLE
        self._metrics.circuit_open.set(0)
        self.breaker.record_success()
        return result

    async def ping(self) -> bool:
        return await self.call("ping", lambda r: r.ping()) is True
