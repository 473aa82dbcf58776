"""Finding 5: a login or registration flood must not starve other routes of
database connections. Logins used to hold a pooled connection while they
queued for one of the two Argon2 slots."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from app.auth.dependencies import AuthServices
from app.platform.state import Platform
from tests.support.api import account, new_user_payload

FLOOD = 5
HASH_SECONDS = 0.7  # longer than the pool timeout: a held connection starves others


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "db_pool_size": 2,
        "db_max_overflow": 0,
        "db_pool_timeout": 0.5,
        "password_hash_concurrency": 1,
        "password_hash_queue": FLOOD,  # all of them queue: this test is about connections
        "rate_limit_enabled": False,
    }


@pytest.fixture
def slow_hashes(auth: AuthServices, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hash takes HASH_SECONDS, so a flood of FLOOD queues for seconds."""
    hasher: Any = auth.hasher._hash
    for name in ("hash", "verify", "verify_and_update"):
        original = getattr(hasher, name)

        def slow(*args: Any, _original: Any = original) -> Any:
            time.sleep(HASH_SECONDS)
            return _original(*args)

        monkeypatch.setattr(hasher, name, slow)


@pytest.mark.usefixtures("slow_hashes")
async def test_a_login_flood_leaves_connections_for_other_routes(client: httpx.AsyncClient, platform: Platform) -> None:
    me = await account(client)
    flood = [
        asyncio.create_task(client.post("/auth/token", data={"username": me.username, "password": "wrong"}))
        for _ in range(FLOOD)
    ]
    await asyncio.sleep(0.2)  # queued behind the one hash slot by now
    checked_out = platform.engine.pool.checkedout()  # type: ignore[attr-defined]
    unrelated = await client.get("/users/me", headers=me.headers)
    assert unrelated.status_code == 200, unrelated.text
    assert checked_out == 0  # nobody holds a connection while queueing
    assert {r.status_code for r in await asyncio.gather(*flood)} == {401}


@pytest.mark.usefixtures("slow_hashes")
async def test_a_registration_flood_leaves_connections_for_other_routes(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    me = await account(client)
    flood = [asyncio.create_task(client.post("/users/", json=new_user_payload())) for _ in range(FLOOD)]
    await asyncio.sleep(0.2)
    checked_out = platform.engine.pool.checkedout()  # type: ignore[attr-defined]
    unrelated = await client.get("/users/me", headers=me.headers)
    assert unrelated.status_code == 200, unrelated.text
    assert checked_out == 0
    assert {r.status_code for r in await asyncio.gather(*flood)} == {201}


class TestFullQueue:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"password_hash_concurrency": 1, "password_hash_queue": 2, "rate_limit_enabled": False}

    @pytest.mark.usefixtures("slow_hashes")
    async def test_past_the_queue_logins_get_a_quick_503(self, client: httpx.AsyncClient) -> None:
        me = await account(client)
        loop = asyncio.get_running_loop()

        async def timed_login() -> tuple[httpx.Response, float]:
            started = loop.time()
            response = await client.post("/auth/token", data={"username": me.username, "password": "wrong"})
            return response, loop.time() - started

        results = await asyncio.gather(*(timed_login() for _ in range(6)))
        codes = sorted(r.status_code for r, _ in results)
        assert codes == [401] * 3 + [503] * 3  # 1 hashing + 2 queued; the rest refused
        for response, took in results:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.headers["content-type"] == "application/problem+json"
                assert took < 0.1  # not queued: refused at once


async def test_bad_tokens_are_refused_without_a_connection(client: httpx.AsyncClient, platform: Platform) -> None:
    """With every pooled connection taken, a bad token on a read route is
    still a 401 at once, not a 503 after the pool timeout: it is refused
    before a connection is asked for, so a flood of them starves nobody."""
    await account(client)  # the schema is warm; nobody else needs a connection
    async with platform.engine.connect(), platform.engine.connect():  # the whole pool (2, no overflow)
        answers = await asyncio.gather(
            *(client.get("/users/me", headers={"Authorization": "Bearer not-a-token"}) for _ in range(FLOOD))
        )
    assert [a.status_code for a in answers] == [401] * FLOOD
