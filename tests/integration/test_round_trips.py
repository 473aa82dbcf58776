"""Reads pay no BEGIN / COMMIT; writes keep their transaction.

The transaction-control statements a request makes are seen on the driver
(asyncpg's query logger records every simple query: BEGIN, COMMIT, ROLLBACK
and pings; the prepared SELECTs are not its concern here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import event

from app.platform.state import Platform
from tests.support.api import account, create_product, place_order


@pytest.fixture
def simple_queries(platform: Platform) -> Iterator[list[str]]:
    """The simple queries sent on pooled connections from now on."""
    seen: list[str] = []
    logged: set[int] = set()

    def log(record: Any) -> None:
        seen.append(record.query.strip().rstrip(";").upper())

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) not in logged:
            logged.add(id(driver))
            driver.add_query_logger(log)

    sync_engine = platform.engine.sync_engine
    event.listen(sync_engine, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "checkout", on_checkout)


def transaction_control(queries: list[str]) -> list[str]:
    return [q for q in queries if q.split()[0] in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}]


async def test_reads_run_without_a_transaction(client: httpx.AsyncClient, simple_queries: list[str]) -> None:
    owner = await account(client, "reader")
    product = await create_product(client, owner)  # not cached yet: its first read is a miss
    simple_queries.clear()
    for path in ("/users/me", "/products/", f"/products/{product['id']}"):
        response = await client.get(path, headers=owner.headers)
        assert response.status_code == 200, response.text
    assert transaction_control(simple_queries) == []


async def test_an_order_still_commits_its_transaction(client: httpx.AsyncClient, simple_queries: list[str]) -> None:
    owner = await account(client, "writer")
    product = await create_product(client, owner, stock=5)
    simple_queries.clear()
    response = await place_order(client, owner, [(product["id"], 2)], key="once")
    assert response.status_code == 201, response.text
    control = transaction_control(simple_queries)
    assert control[0].startswith("BEGIN")
    assert control[-1] == "COMMIT"


async def test_a_cache_miss_makes_two_redis_round_trips(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored value or a lease in one script, then the store: no GET
    before them (a miss used to make three round trips)."""
    owner = await account(client, "misser")
    warm_up, product = await create_product(client, owner), await create_product(client, owner)  # not cached yet
    await client.get(f"/products/{warm_up['id']}")  # a miss: the scripts are loaded into Redis by now
    sent: list[str] = []
    execute: Any = Redis.execute_command

    async def recorded(self: Redis, *args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await execute(self, *args, **options)

    monkeypatch.setattr(Redis, "execute_command", recorded)
    response = await client.get(f"/products/{product['id']}")
    assert response.headers["x-cache"] == "MISS"
    assert sent == ["EVALSHA", "EVALSHA"]
