"""Fault-injection routes for the reliability suites (DIAGNOSTIC_ROUTES=true).

Never mounted by default; the settings refuse them in production.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import text

from app.platform.state import PlatformDep

router = APIRouter(prefix="/_diag", include_in_schema=False)


@router.get("/sleep")
async def sleep(
    platform: PlatformDep,
    seconds: Annotated[float, Query(ge=0, le=120)] = 1.0,
    hold_db: bool = False,
) -> dict[str, float]:
    """A slow request; with hold_db, it keeps a pool connection the whole time."""
    if hold_db:
        async with platform.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
    return {"slept": seconds}


@router.get("/slow-query")
async def slow_query(platform: PlatformDep, seconds: Annotated[float, Query(ge=0, le=120)] = 1.0) -> dict[str, float]:
    """A slow statement, as a request would run it: a pooled connection is
    held for the whole statement (pool exhaustion, stalled statements)."""
    async with platform.sessionmaker() as session:
        await session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    return {"slept": seconds}


@router.get("/error")
async def error() -> None:
    raise RuntimeError("diagnostic failure with secret internals: SELECT * FROM users")
