"""The connection pool: first come, first served, and measured (how long
requests wait for a connection, how often they give up, which answers 503)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

# From an idle pool (microseconds) to DB_POOL_TIMEOUT's range.
WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class PoolMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.wait = Histogram(
            "db_pool_wait_seconds",
            "Time spent waiting for a pooled connection",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.timeouts = Counter(
            "db_pool_timeouts", "Requests that gave up waiting for a pooled connection", registry=registry
        )


class _WaitExpired(Exception):
    """A waiter's pool timeout ran out."""


class FairQueue(AsyncAdaptedQueue[Any]):
    """The pool's idle connections, handed to waiting requests in the order
    they came.

    SQLAlchemy's asyncio queue lets a request that just arrived take a
    connection that was returned for a request already waiting (asyncio.Queue
    wakes the waiter, and whoever runs first takes the connection); the one
    that lost goes to the back of the line. Saturated, that sends a few
    requests to the back again and again until the pool timeout refuses them
    (503) while the mean wait is a fraction of it. Here a returned connection
    goes straight to the longest waiter: none is left in the queue for a
    newcomer to take while others wait.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def _next_waiter(self) -> asyncio.Future[Any] | None:
        # Waiters that timed out or were cancelled are skipped (and dropped),
        # and so are those of an event loop that has closed (a test's, say):
        # nothing would ever take their connection.
        while self._waiters and (self._waiters[0].done() or self._waiters[0].get_loop().is_closed()):
            self._waiters.popleft()
        return self._waiters[0] if self._waiters else None

    def put_nowait(self, item: Any) -> None:
        waiter = self._next_waiter()
        if waiter is None:
            super().put_nowait(item)  # Full when over the pool size: the pool closes an overflow connection
        else:
            self._waiters.popleft()
            waiter.set_result(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # never waits: the pool's own size bounds what is returned

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        # A connection is only ever in the queue while nobody waits (put_nowait
        # hands it to a waiter instead), so taking one here passes nobody.
        try:
            return self.get_nowait()
        except Empty:
            if not block:
                raise
        return await_only(self._wait(within=timeout))

    async def _wait(self, within: float | None) -> Any:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(waiter)

        def expire() -> None:
            if not waiter.done():
                waiter.set_exception(_WaitExpired())

        timer = loop.call_later(within, expire) if within is not None else None
        try:
            return await waiter
        except _WaitExpired:
            raise Empty() from None
        except BaseException:
            # Cancelled while waiting (the client went away): a connection
            # handed over in the meantime goes on to the next in line.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.put_nowait(waiter.result())
            waiter.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()


class MeteredPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, first come first served (FairQueue),
    timing each checkout's wait. `metrics` is set once the app's registry is
    known (Telemetry.watch_pool)."""

    _queue_class = FairQueue
    metrics: PoolMetrics | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        # Includes opening an overflow connection. (QueuePool retries by
        # calling itself in a rare race; such a wait is then counted twice.)
        started = time.perf_counter()
        try:
            return super()._do_get()
        except exc.TimeoutError:
            if self.metrics is not None:
                self.metrics.timeouts.inc()
            raise
        finally:
            if self.metrics is not None:
                self.metrics.wait.observe(time.perf_counter() - started)

    def recreate(self) -> MeteredPool:
        pool = super().recreate()
        assert isinstance(pool, MeteredPool)  # noqa: S101  (recreate() builds the same class)
        pool.metrics = self.metrics
        return pool
