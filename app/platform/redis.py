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
    """Closed, open, half-open.

    `threshold` failures in a row open the circuit: calls are skipped for
    `cooldown` seconds. Then it is half-open: exactly ONE caller gets a trial
    call while every other caller is still skipped; the trial's success closes
    the circuit, its failure opens it for another cool-down. (Letting every
    caller through at once after the cool-down would put a whole burst of
    requests on a Redis that may still be dead, each paying its timeout.)
    """

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None  # None: closed
        self._trial_running = False

    @property
    def is_closed(self) -> bool:
        return self._open_until is None

    @property
    def is_open(self) -> bool:
        """Open and still cooling down (calls are skipped)."""
        return self._open_until is not None and self._clock() < self._open_until

    def would_allow(self) -> bool:
        """Whether `allow()` would let a call through now, without taking the trial."""
        if self._open_until is None:
            return True
        return not self._trial_running and self._clock() >= self._open_until

    def allow(self) -> bool:
        """May this caller call? Half-open: True for the one trial caller only,
        who must then report success, failure or `abandon()`."""
        if not self.would_allow():
            return False
        if self._open_until is not None:
            self._trial_running = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._open_until = None
        self._trial_running = False

    def record_failure(self) -> bool:
        """Returns True when this failure opened the circuit."""
        self._failures += 1
        was_trial = self._trial_running
        self._trial_running = False
        if self._failures < self.threshold and not was_trial:
            return False
        was_open = self._open_until is not None
        self._open_until = self._clock() + self.cooldown
        return not was_open

    def abandon(self) -> None:
        """The trial caller went away without an outcome (cancelled): let the
        next caller try."""
        self._trial_running = False


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
        """Whether a call now would reach Redis (does not take the half-open trial)."""
        return self.breaker.would_allow()

    @property
    def healthy(self) -> bool:
        """The circuit is closed: Redis answered the last call."""
        return self.breaker.is_closed

    async def call(self, operation: str, command: Callable[[Redis], Awaitable[T]]) -> T | Unavailable:
        if not self.breaker.allow():
            return UNAVAILABLE
        try:
            async with asyncio.timeout(self.timeout):
                result = await command(self.client)
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
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
