"""Pooled connections are checked only when they may be dead: a healthy,
recently used connection costs no extra round trip at checkout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool, QueuePool

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


async def get_behind_a_table_lock(
    client: httpx.AsyncClient, settings: Settings, meanwhile: Callable[[], Awaitable[None]]
) -> httpx.Response:
    """GET /users/1 while another connection holds the users table's lock
    (as a migration's DDL does); `meanwhile` runs while the request waits,
    then the lock is released and the request's answer returned."""
    locker = create_async_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        async with locker.connect() as connection:
            await connection.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            waiting = asyncio.create_task(client.get("/users/1"))
            await meanwhile()
            assert not waiting.done()
            await connection.rollback()
        return await waiting
    finally:
        await locker.dispose()


async def test_a_statement_waiting_on_a_lock_is_left_alone_when_new_connections_are_refused(
    client: httpx.AsyncClient, platform: Platform, settings: Settings
) -> None:
    """A migration's DDL holds a table lock while old and new pods overlap, and
    the extra pods may exhaust max_connections: the watchdog's fresh-connection
    probe is then refused by PostgreSQL itself. That is an answer: the waiting
    statements are alive and must finish, not be ended with a 503."""
    liveness = liveness_of(platform)
    # A refusal from the server (here: no such database; "too many clients" in the cluster).
    refusing = settings.sqlalchemy_url.set(drivername="postgresql", database="no_such_database")
    liveness.probe_dsn = refusing.render_as_string(hide_password=False)

    async def long_enough_to_probe() -> None:
        # Long enough for the watchdog to see a stalled statement and probe.
        await asyncio.sleep(settings.db_ping_timeout * 4)

    response = await get_behind_a_table_lock(client, settings, long_enough_to_probe)
    assert response.status_code == 404, response.text
    assert not liveness.unreachable


async def test_a_statement_waiting_on_a_lock_is_left_alone_while_others_are_answered(
    client: httpx.AsyncClient, platform: Platform, settings: Settings
) -> None:
    """On a loaded node the watchdog's fresh connection can time out while
    the server is fine. Pooled connections that keep getting answers show
    that it is: the statement waiting on a lock is left to finish."""
    liveness = liveness_of(platform)

    async def never_answer(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    liveness.probe_dsn = f"postgresql://probe@127.0.0.1:{port}/probe"  # every probe times out

    async def other_work_keeps_getting_answers() -> None:
        deadline = asyncio.get_running_loop().time() + liveness.policy.connect_timeout + 1
        while asyncio.get_running_loop().time() < deadline:
            async with platform.engine.connect() as other:
                await other.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)

    try:
        response = await get_behind_a_table_lock(client, settings, other_work_keeps_getting_answers)
    finally:
        silent.close()
    assert response.status_code == 404, response.text
    assert not liveness.unreachable


async def test_the_pool_is_filled_before_the_first_request(platform: Platform, settings: Settings) -> None:
    """A new pod opens its connections before it reports ready, not under its
    first traffic (app/platform/database.py `fill_pool`)."""
    pool = platform.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedin() + pool.checkedout() == settings.db_pool_size
