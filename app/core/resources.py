"""What the app opens at startup and closes at shutdown (never at import)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.email import EmailSender, create_email_sender
from app.core.lifecycle import LoopLagMonitor, ShutdownState, install_sigterm_drain
from app.core.ratelimit import RateLimiter
from app.core.redis import RedisGuard, create_redis
from app.core.security import PasswordHasher, TokenCodec

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    limiter: RateLimiter
    http: httpx.AsyncClient
    hasher: PasswordHasher
    tokens: TokenCodec
    email: EmailSender
    shutdown: ShutdownState


async def get_resources(request: Request) -> Resources:
    # async on purpose: FastAPI runs plain-def dependencies in its thread pool,
    # a thread hop per request for one attribute read.
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        redis = create_redis(settings)
        listener = create_redis(settings, blocking_reads=True)
        guard = None
        if redis is not None and listener is not None:
            stack.push_async_callback(redis.aclose)
            stack.push_async_callback(listener.aclose)
            guard = RedisGuard(redis, settings, app.state.redis_metrics)
        cache = Cache(
            app.state.cache_metrics, guard=guard, listener=listener, local_max_entries=settings.local_cache_max_entries
        )
        cache.start()
        stack.push_async_callback(cache.stop)
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.email_timeout))
        stack.push_async_callback(http.aclose)
        hasher = PasswordHasher(settings)
        await hasher.warm_up()
        shutdown = ShutdownState()
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            cache=cache,
            limiter=RateLimiter(guard, enabled=settings.rate_limit_enabled),
            http=http,
            hasher=hasher,
            tokens=TokenCodec(settings),
            email=create_email_sender(settings, http),
            shutdown=shutdown,
        )
        monitor: LoopLagMonitor = app.state.loop_lag_monitor
        monitor.start()
        stack.push_async_callback(monitor.stop)
        stack.callback(install_sigterm_drain(shutdown, settings.shutdown_drain_seconds))
        log.info("startup complete", extra={"environment": settings.environment, "database": engine.dialect.name})
        try:
            yield
        finally:
            # Readiness must already say 503 while resources are being closed.
            shutdown.shutting_down = True
            log.info("shutting down")
