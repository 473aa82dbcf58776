"""The Redis client: short timeouts, no hidden retries, a blocking pool."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.config import Settings


def create_redis(settings: Settings) -> Redis | None:
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
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
