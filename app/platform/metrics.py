"""Prometheus metrics: one registry per app, HTTP metrics, the database pool,
the cache, Redis and the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.platform.cache import CacheMetrics
from app.platform.gc_pauses import GcPauseMetrics
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


# Request latency buckets (seconds), from a fast cache hit to a pool timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The handler label of a request no route matched (a 404, a slash redirect):
# the raw path would give every scanner's guess a series of its own.
UNMATCHED_HANDLER = "none"
METRICS_PATH = "/metrics"


class HttpMetrics:
    """Request count and latency by handler (the route's path template),
    method and status: the series dashboards and alerts read (rate, errors,
    latency), under the names prometheus-fastapi-instrumentator gave them.

    Recorded by RequestContextMiddleware, which already times every request
    and sees its status, from the route the router left in the ASGI scope.
    The instrumentator this replaces matched the route a second time and
    built a Response and an Info object per request: bench/README.md has the
    profile.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["handler", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Duration of HTTP requests in seconds",
            ["handler", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def record(self, route: object, method: str, status: int, seconds: float) -> None:
        handler = getattr(route, "path", None)
        if handler == METRICS_PATH:
            return  # scrapes are not traffic
        labels = (handler if isinstance(handler, str) else UNMATCHED_HANDLER, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


class Telemetry:
    """Every metric of one app, in a registry of its own (not the global one):
    several apps in one process, as in tests, must not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.gc_pauses = GcPauseMetrics(self.registry)
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


def expose_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serves the registry at /metrics on the app's own port (without
    METRICS_PORT). A plain function: FastAPI runs it in its thread pool, so a
    scrape's rendering never holds the event loop."""

    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)


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
