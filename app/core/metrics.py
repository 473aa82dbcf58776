"""Prometheus metrics: HTTP (instrumentator), DB pool gauges, process stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


def create_registry() -> CollectorRegistry:
    # One registry per app (not the global one): several apps in one process,
    # as in tests, must not collide.
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class PoolCollector(Collector):
    """Reads the SQLAlchemy pool at scrape time."""

    def __init__(self, engine: Callable[[], AsyncEngine | None]) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self._engine()
        if engine is None or not isinstance(engine.pool, QueuePool):
            return
        pool = engine.pool
        for name, doc, value in (
            ("db_pool_size", "Configured persistent connections", pool.size()),
            ("db_pool_checked_out", "Connections in use by requests", pool.checkedout()),
            ("db_pool_checked_in", "Idle connections in the pool", pool.checkedin()),
            ("db_pool_overflow", "Connections open beyond the pool size", max(0, pool.overflow())),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


def install_http_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    Instrumentator(
        registry=registry,
        excluded_handlers=["/metrics"],
        should_group_status_codes=False,
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
