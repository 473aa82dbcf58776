"""Prometheus metrics: one registry per app, HTTP metrics (instrumentator),
the database pool, the cache, Redis and the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.platform.cache import CacheMetrics
from app.platform.lifecycle import LoopLagMonitor
from app.platform.outbox import OutboxMetrics
from app.platform.pool import MeteredPool, PoolMetrics
from app.platform.redis import RedisMetrics


class PoolCollector(Collector):
    """Reads the SQLAlchemy pool at scrape time (nothing before startup)."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.engine is None or not isinstance(self.engine.pool, QueuePool):
            return
        pool = self.engine.pool
        for name, doc, value in (
            ("db_pool_size", "Configured persistent connections", pool.size()),
            ("db_pool_checked_out", "Connections in use by requests", pool.checkedout()),
            ("db_pool_checked_in", "Idle connections in the pool", pool.checkedin()),
            ("db_pool_overflow", "Connections open beyond the pool size", max(0, pool.overflow())),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


class Telemetry:
    """Every metric of one app, in a registry of its own (not the global one):
    several apps in one process, as in tests, must not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.cache = CacheMetrics(self.registry)
        self.redis = RedisMetrics(self.registry)
        self.loop_lag = LoopLagMonitor(self.registry)
        self.outbox = OutboxMetrics(self.registry)
        self.pool = PoolMetrics(self.registry)
        self._pool = PoolCollector()
        self.registry.register(self._pool)

    def watch_pool(self, engine: AsyncEngine) -> None:
        self._pool.engine = engine
        if isinstance(engine.pool, MeteredPool):
            engine.pool.metrics = self.pool


# Request latency buckets (seconds), from a fast cache hit to a pool timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def install_http_metrics(app: FastAPI, registry: CollectorRegistry, *, expose: bool) -> None:
    """Request count and latency by handler, method and status; `expose`
    serves /metrics on the app's own port too.

    The instrumentator's default set adds request and response size
    histograms and a second, high-resolution latency histogram; measured, it
    took about 40 % of a small request's CPU. These two answer the questions
    dashboards and alerts ask (rate, errors, latency).
    """
    instrumentator = Instrumentator(
        registry=registry,
        excluded_handlers=["/metrics"],
        should_group_status_codes=False,
    )
    # registry= on each metric too: unlike the instrumentator's default set,
    # these would otherwise land in the global registry, not the one /metrics serves.
    instrumentator.add(
        metrics.requests(registry=registry),
        metrics.latency(registry=registry, buckets=LATENCY_BUCKETS),
    )
    instrumentator.instrument(app)
    if expose:
        instrumentator.expose(app, endpoint="/metrics", include_in_schema=False)


@asynccontextmanager
async def metrics_listener(registry: CollectorRegistry, port: int) -> AsyncIterator[None]:
    """Serves the registry on a port of its own (METRICS_PORT), from
    prometheus_client's small HTTP server in a daemon thread: scrapes never
    queue behind API requests, and the API's port has no /metrics to expose."""
    server, _thread = start_http_server(port, registry=registry)
    try:
        yield
    finally:
        # shutdown() waits for the serving loop to notice (up to 0.5 s): not on the event loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
