"""What the platform opens at startup and closes at shutdown (never at import).

`open_platform` builds it inside the app's lifespan (app/main.py, the
composition root); requests reach it through `PlatformDep`, which reads the
lifespan state Starlette hands to every request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.platform.cache import Cache
from app.platform.config import Settings
from app.platform.database import (
    create_engine,
    create_liveness,
    create_read_engine,
    create_sessionmaker,
    fill_pool,
)
from app.platform.db_liveness import DatabaseLiveness
from app.platform.email import EmailSender, create_email_sender
from app.platform.lifecycle import ShutdownState, install_sigterm_drain
from app.platform.metrics import Telemetry, metrics_listener
from app.platform.outbox import OutboxRelay
from app.platform.redis import RedisGuard, create_redis
from app.platform.tracing import TracedCache, TracedEmailSender, Tracing, untraced

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: Settings
    telemetry: Telemetry
    engine: AsyncEngine
    # The same pool without BEGIN / COMMIT: app/platform/session.py `read_connection`.
    read_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    # None without REDIS_URL: the cache and the rate limits stay in-process.
    redis: RedisGuard | None
    http: httpx.AsyncClient
    email: EmailSender
    outbox: OutboxRelay
    shutdown: ShutdownState
    # Liveness of the pooled PostgreSQL connections (None on SQLite).
    db_liveness: DatabaseLiveness | None = None


@asynccontextmanager
async def open_platform(
    settings: Settings, telemetry: Telemetry, tracing: Tracing | None = None
) -> AsyncIterator[Platform]:
    """`tracing` (None: off) instruments the engine, the Redis command client,
    the HTTP client and the cache; off, they are the plain objects."""
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        liveness = create_liveness(engine, settings)
        if liveness is not None:
            liveness.start()
            stack.push_async_callback(liveness.stop)
        telemetry.watch_pool(engine)
        if engine.dialect.name == "postgresql":
            await fill_pool(engine, settings.db_pool_size, within=settings.db_connect_timeout * 2)
        redis = create_redis(settings)
        listener = create_redis(settings, blocking_reads=True)
        guard = None
        if redis is not None and listener is not None:
            stack.push_async_callback(redis.aclose)
            stack.push_async_callback(listener.aclose)
            guard = RedisGuard(redis, settings, telemetry.redis)
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.email_timeout))
        stack.push_async_callback(http.aclose)
        if tracing is not None:
            tracing.instrument_engine(engine)
            if redis is not None:
                # Not the listener: it polls its channel every second.
                tracing.instrument_redis(redis)
            tracing.instrument_http(http)
        cache_class = Cache if tracing is None else partial(TracedCache, tracing.tracer)
        cache = cache_class(
            telemetry.cache,
            guard=guard,
            listener=listener,
            local_max_entries=settings.local_cache_max_entries,
            local_max_bytes=settings.local_cache_max_mib * 2**20,
        )
        cache.start()
        stack.push_async_callback(cache.stop)
        shutdown = ShutdownState()
        sessionmaker = create_sessionmaker(engine)

        # The sender is looked up at each send: tests swap platform.email.
        def email_sender() -> EmailSender:
            return platform.email if tracing is None else TracedEmailSender(platform.email, tracing.tracer)

        platform = Platform(
            settings=settings,
            telemetry=telemetry,
            engine=engine,
            read_engine=create_read_engine(engine),
            sessionmaker=sessionmaker,
            cache=cache,
            redis=guard,
            http=http,
            email=create_email_sender(settings, http),
            outbox=OutboxRelay(sessionmaker, email_sender, settings, telemetry.outbox),
            shutdown=shutdown,
            db_liveness=liveness,
        )
        # Its polling is not traced; each e-mail it sends is a trace of its own.
        with untraced(tracing):
            platform.outbox.start()
        # Stopped before the HTTP client and the engine it needs are closed.
        stack.push_async_callback(platform.outbox.stop)
        if settings.metrics_port:
            await stack.enter_async_context(metrics_listener(telemetry.registry, settings.metrics_port))
        telemetry.loop_lag.start()
        stack.push_async_callback(telemetry.loop_lag.stop)
        telemetry.gc_pauses.start()
        stack.callback(telemetry.gc_pauses.stop)
        stack.callback(install_sigterm_drain(shutdown, settings.shutdown_drain_seconds))
        log.info("startup complete", extra={"environment": settings.environment, "database": engine.dialect.name})
        try:
            yield platform
        finally:
            # Readiness must already say 503 while resources are being closed.
            shutdown.shutting_down = True
            log.info("shutting down")


async def get_platform(request: Request) -> Platform:
    # async on purpose: FastAPI runs plain-def dependencies in its thread pool,
    # a thread hop per request for one attribute read.
    platform: Platform = request.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
