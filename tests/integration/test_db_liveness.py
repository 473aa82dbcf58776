"""Pooled connections are checked only when they may be dead: a healthy,
recently used connection costs no extra round trip at checkout."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.platform.config import Settings
from app.platform.db_liveness import DatabaseLiveness
from app.platform.state import Platform

IDLE = 0.3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The outbox relay's polls would check connections out too: keep them out of the counts.
    return {"db_ping_idle_seconds": IDLE, "outbox_poll_seconds": 300}


def liveness_of(platform: Platform) -> DatabaseLiveness:
    assert platform.db_liveness is not None
    return platform.db_liveness


async def test_busy_connections_are_not_pinged(client: httpx.AsyncClient, platform: Platform) -> None:
    liveness = liveness_of(platform)
    await client.get("/users/1")
    before = liveness.pings
    for _ in range(20):
        assert (await client.get("/users/1")).status_code == 404
    assert liveness.pings == before  # SQLAlchemy's pre-ping would have cost 20 round trips


async def test_idle_connections_are_pinged_once_before_use(client: httpx.AsyncClient, platform: Platform) -> None:
    liveness = liveness_of(platform)
    await client.get("/users/1")
    await asyncio.sleep(IDLE + 0.1)
    before = liveness.pings
    await client.get("/users/1")
    await client.get("/users/1")
    assert liveness.pings == before + 1


async def test_after_a_connection_error_every_pooled_connection_is_checked(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    liveness = liveness_of(platform)
    await client.get("/users/1")
    before = liveness.pings
    liveness.epoch += 1  # what a disconnect anywhere in the pool does
    await client.get("/users/1")
    assert liveness.pings == before + 1


async def test_dead_pooled_connections_are_replaced_not_reported(
    client: httpx.AsyncClient, platform: Platform, settings: Settings
) -> None:
    """Connections the server closed while idle: the ping finds them, the pool
    opens others, and the request never sees the error."""
    await asyncio.gather(*(client.get("/users/1") for _ in range(3)))  # a few pooled connections
    killer = create_async_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        async with killer.connect() as connection:
            killed = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = 'storefront-api'"
                )
            )
            assert killed.scalar_one() >= 1
    finally:
        await killer.dispose()
    await asyncio.sleep(IDLE + 0.1)
    responses = await asyncio.gather(*(client.get("/users/1") for _ in range(3)))
    assert [r.status_code for r in responses] == [404] * 3
