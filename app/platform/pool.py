"""The connection pool, measured: how long requests wait for a connection,
and how often they give up (which answers 503)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

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


class MeteredPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, timing each checkout's wait. `metrics`
    is set once the app's registry is known (Telemetry.watch_pool)."""

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
