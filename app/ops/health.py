"""Health probes: /health (legacy), /livez (process), /readyz (dependencies)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from app.platform.cache import CacheStatus
from app.platform.errors import unavailable_response
from app.platform.state import Platform, PlatformDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class StatusOut(BaseModel):
    status: str


class ReadinessChecks(BaseModel):
    database: Literal["ok"]
    cache: CacheStatus


class ReadinessOut(BaseModel):
    status: Literal["ready"]
    checks: ReadinessChecks


@router.get("/health", response_model=StatusOut)
async def health() -> StatusOut:
    """Kept from the tutorial: answers without checking anything."""
    return StatusOut(status="healthy")


@router.get("/livez", response_model=StatusOut)
async def livez() -> StatusOut:
    """The process can serve. Never touches the database or Redis: a backing
    service outage must not make Kubernetes restart healthy pods."""
    return StatusOut(status="alive")


async def database_ready(platform: Platform) -> bool:
    pool = platform.engine.pool
    settings = platform.settings
    if isinstance(pool, QueuePool) and pool.checkedout() >= settings.db_pool_size + settings.db_max_overflow:
        # Every connection is busy, which proves the database answers. Failing
        # readiness here would pull pods out exactly when load peaks.
        return True
    try:
        async with asyncio.timeout(settings.readiness_timeout):
            async with platform.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
        log.warning("readiness: database check failed", extra={"error": type(exc).__name__})
        return False
    return True


@router.get("/readyz", response_model=ReadinessOut)
async def readyz(platform: PlatformDep) -> Any:
    """Ready to take traffic: the database answers within a short timeout and
    the process is not shutting down. Redis being down only degrades caching."""
    if platform.shutdown.shutting_down:
        return unavailable_response("The service is shutting down")
    if not await database_ready(platform):
        return unavailable_response("The database is unreachable", extra={"checks": {"database": "unavailable"}})
    return ReadinessOut(status="ready", checks=ReadinessChecks(database="ok", cache=await platform.cache.status()))
