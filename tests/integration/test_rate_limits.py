"""Login and registration attempts are limited, across replicas, Redis or not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_redis.executor import RedisExecutor

from tests.support.api import PASSWORD, new_user_payload, register

LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"login_rate_limit": LIMIT, "register_rate_limit": LIMIT, "cache_breaker_cooldown_seconds": 30}


WRONG_PASSWORD = "wrong-password"


async def _login(client: httpx.AsyncClient, username: str, password: str = WRONG_PASSWORD) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def test_login_is_throttled_after_the_limit_with_retry_after(client: httpx.AsyncClient) -> None:
    user = await register(client)
    codes = [(await _login(client, str(user["username"]))).status_code for _ in range(LIMIT)]
    assert codes == [401] * LIMIT
    throttled = await _login(client, str(user["username"]), PASSWORD)  # even the right password
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60


async def test_the_limit_is_shared_by_replicas(client: httpx.AsyncClient, replica: httpx.AsyncClient) -> None:
    user = await register(client)
    name = str(user["username"])
    responses = [
        await (client if i % 2 else replica).post("/auth/token", data={"username": name, "password": "x"})
        for i in range(LIMIT)
    ]
    assert [r.status_code for r in responses] == [401] * LIMIT
    assert (await replica.post("/auth/token", data={"username": name, "password": "x"})).status_code == 429
    assert (await client.post("/auth/token", data={"username": name, "password": "x"})).status_code == 429


async def test_registration_is_throttled(client: httpx.AsyncClient) -> None:
    for _ in range(LIMIT):
        assert (await client.post("/users/", json=new_user_payload())).status_code == 201
    response = await client.post("/users/", json=new_user_payload())
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_limits_hold_in_memory_while_redis_is_down(client: httpx.AsyncClient, redis_proc: RedisExecutor) -> None:
    with redis_proc.stopped():
        codes = [(await _login(client, "someone")).status_code for _ in range(LIMIT + 1)]
    assert codes == [401] * LIMIT + [429]
