"""Pool exhaustion and a PostgreSQL restart answer 503 + Retry-After, never 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from app.platform.state import Platform
from tests.conftest import make_settings
from tests.integration.conftest import app_client
from tests.support.api import new_user_payload
from tests.support.servers import PostgresServer, migrate, postgres_server


class TestPoolExhaustion:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"diagnostic_routes": True, "db_pool_size": 2, "db_max_overflow": 0, "db_pool_timeout": 0.5}

    async def test_excess_requests_get_a_quick_503_and_nothing_leaks(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        pool = platform.engine.pool
        assert isinstance(pool, QueuePool)
        holders = [
            asyncio.create_task(client.get("/_diag/sleep", params={"seconds": 2, "hold_db": True})) for _ in range(2)
        ]
        while pool.checkedout() < 2:  # noqa: ASYNC110 - polling the pool is the point
            await asyncio.sleep(0.01)

        loop = asyncio.get_running_loop()
        started = loop.time()
        starved = await asyncio.gather(*(client.get("/users/1") for _ in range(5)))
        waited = loop.time() - started

        assert [r.status_code for r in starved] == [503] * 5
        assert all(r.headers["retry-after"] == "1" for r in starved)
        assert all(r.headers["content-type"] == "application/problem+json" for r in starved)
        assert waited < 2  # the pool timeout (0.5 s), not the holders' 2 s
        assert (await client.get("/livez")).status_code == 200
        # Saturation is not unavailability: the pod stays in the load balancer.
        assert (await client.get("/readyz")).status_code == 200

        assert [r.status_code for r in await asyncio.gather(*holders)] == [200, 200]
        pool = platform.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0
        assert (await client.get("/users/1")).status_code == 404


@pytest.fixture
def private_pg() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test stops it."""
    with postgres_server() as server:
        from pytest_postgresql.janitor import DatabaseJanitor

        DatabaseJanitor(user="postgres", host=server.host, port=server.port, dbname="app").init()
        migrate(server.url("app"))
        yield server


@pytest.fixture
async def private_client(private_pg: PostgresServer) -> AsyncIterator[httpx.AsyncClient]:
    url = private_pg.url("app").render_as_string(hide_password=False)
    async with app_client(make_settings(database_url=url, db_connect_timeout=1.0)) as http:
        yield http


async def test_postgres_restart_is_503_then_recovers(
    private_pg: PostgresServer, private_client: httpx.AsyncClient
) -> None:
    created = await private_client.post("/users/", json=new_user_payload())
    assert created.status_code == 201
    user_url = created.headers["location"]

    private_pg.executor.stop()
    try:
        for path in (user_url, user_url):
            response = await private_client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
        write = await private_client.post("/users/", json=new_user_payload())
        assert write.status_code == 503
        ready = await private_client.get("/readyz")
        assert ready.status_code == 503
        assert (await private_client.get("/livez")).status_code == 200
    finally:
        private_pg.executor.start()

    # Pre-ping drops the dead pooled connections: the first request succeeds.
    response = await private_client.get(user_url)
    assert response.status_code == 200
    assert (await private_client.get("/readyz")).status_code == 200


async def test_connections_carry_the_application_name(client: httpx.AsyncClient, platform: Platform) -> None:
    """Operators count the API's connections in pg_stat_activity by this name."""
    async with platform.engine.connect() as connection:
        name = (await connection.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        timeout = (await connection.execute(text("SELECT current_setting('statement_timeout')"))).scalar_one()
    assert name == "storefront-api"
    assert timeout == "10s"
