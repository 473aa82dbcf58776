"""Login and registration attempts are limited, across replicas, Redis or not,
and no attacker can turn the limits against an account's owner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from pytest_redis.executor import RedisExecutor

from app.platform.config import Settings
from tests.support.api import PASSWORD, new_user_payload, register
from tests.support.app import Started, started

LIMIT = 3  # failures per (address, account)
FREE = 5  # account-wide failures from unfamiliar addresses before the delay


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "login_rate_limit": LIMIT,
        "register_rate_limit": LIMIT,
        "login_account_free_failures": FREE,
        "cache_breaker_cooldown_seconds": 30,
    }


WRONG_PASSWORD = "wrong-password"
OWNER_ADDRESS = "203.0.113.7"

AddressClient = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def clients_of(app: Started) -> AddressClient:
    """Clients of one app instance, each calling from the address given."""

    @asynccontextmanager
    async def client_from(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app.asgi, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http

    return client_from


@pytest.fixture
def from_address(app: Started) -> AddressClient:
    return clients_of(app)


@pytest.fixture
async def replica_from_address(settings: Settings) -> AsyncIterator[AddressClient]:
    """A second app instance (its own memory), sharing PostgreSQL and Redis."""
    async with started(settings) as other:
        yield clients_of(other)


async def _login(client: httpx.AsyncClient, username: str, password: str = WRONG_PASSWORD) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def _owner(from_address: AddressClient) -> str:
    """A user who has signed in once from OWNER_ADDRESS (now familiar)."""
    async with from_address(OWNER_ADDRESS) as owner:
        user = await register(owner)
        assert (await _login(owner, str(user["username"]), PASSWORD)).status_code == 200
    return str(user["username"])


async def _attack(from_address: AddressClient, name: str, attempts: int, first: int = 1) -> list[httpx.Response]:
    """Wrong passwords for `name`, each from a new address."""
    responses = []
    for n in range(first, first + attempts):
        async with from_address(f"198.51.100.{n}") as attacker:
            responses.append(await _login(attacker, name))
    return responses


async def test_one_address_is_refused_after_the_limit_with_retry_after(
    client: httpx.AsyncClient, from_address: AddressClient
) -> None:
    user = await register(client)
    name = str(user["username"])
    async with from_address("198.51.100.1") as guesser:
        codes = [(await _login(guesser, name)).status_code for _ in range(LIMIT)]
        assert codes == [401] * LIMIT
        throttled = await _login(guesser, name, PASSWORD)  # even the right password, from this address
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # Only that address: the owner elsewhere signs in.
    async with from_address(OWNER_ADDRESS) as owner:
        assert (await _login(owner, name, PASSWORD)).status_code == 200


async def test_successful_logins_do_not_use_up_the_limit(from_address: AddressClient) -> None:
    name = await _owner(from_address)
    async with from_address(OWNER_ADDRESS) as owner:
        codes = [(await _login(owner, name, PASSWORD)).status_code for _ in range(LIMIT * 2)]
    assert codes == [200] * (LIMIT * 2)


async def test_failures_from_rotating_addresses_cannot_lock_the_owner_out(from_address: AddressClient) -> None:
    """Finding 6: ten failed logins from rotating addresses used to make the
    victim's correct login answer 429, again every window."""
    name = await _owner(from_address)
    responses = await _attack(from_address, name, FREE + 10)
    codes = [r.status_code for r in responses]
    assert codes[: FREE + 1] == [401] * (FREE + 1)  # the free failures, then one more after a delay of 0
    assert set(codes[FREE + 1 :]) == {429}, codes
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses[FREE + 1 :])

    async with from_address(OWNER_ADDRESS) as owner:
        assert (await _login(owner, name, PASSWORD)).status_code == 200
        assert (await _login(owner, name)).status_code == 401  # a typo is a 401, not a lockout
        assert (await _login(owner, name, PASSWORD)).status_code == 200


async def test_unfamiliar_addresses_wait_a_delay_that_doubles(from_address: AddressClient) -> None:
    name = await _owner(from_address)
    assert {r.status_code for r in await _attack(from_address, name, FREE)} == {401}
    retry_afters = []
    for round_ in range(3):
        # One attempt gets through, and reserves the account's next slot...
        admitted = await _attack(from_address, name, 1, first=100 + 2 * round_)
        assert admitted[0].status_code == 401
        # ...so the next unfamiliar address must wait, 1 s, then 2 s, then 4 s.
        refused = await _attack(from_address, name, 1, first=101 + 2 * round_)
        assert refused[0].status_code == 429
        retry_afters.append(int(refused[0].headers["retry-after"]))
        if round_ < 2:
            await asyncio.sleep(retry_afters[-1] + 0.05)
    assert retry_afters == [1, 2, 4]


async def test_limits_are_shared_by_replicas(from_address: AddressClient, replica_from_address: AddressClient) -> None:
    """Matrix row 18: two app instances sharing Redis see the same limits."""
    name = await _owner(from_address)
    replicas = [from_address, replica_from_address]
    async with from_address("198.51.100.200") as a, replica_from_address("198.51.100.200") as b:
        codes = [(await _login((a, b)[i % 2], name)).status_code for i in range(LIMIT + 1)]
    assert codes == [401] * LIMIT + [429]  # one (address, account) limit across both

    codes = []
    for n in range(FREE + 3):
        async with replicas[n % 2](f"198.51.100.{n + 1}") as attacker:
            codes.append((await _login(attacker, name)).status_code)
    # LIMIT failures already counted against the account from 198.51.100.200.
    assert codes[: FREE - LIMIT + 1] == [401] * (FREE - LIMIT + 1)
    assert 429 in codes[FREE - LIMIT + 1 :]

    # The address the owner signed in from on the first replica is familiar on the second.
    async with replica_from_address(OWNER_ADDRESS) as owner:
        assert (await _login(owner, name, PASSWORD)).status_code == 200


async def test_registration_is_throttled(client: httpx.AsyncClient) -> None:
    for _ in range(LIMIT):
        assert (await client.post("/users/", json=new_user_payload())).status_code == 201
    response = await client.post("/users/", json=new_user_payload())
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_limits_hold_in_memory_while_redis_is_down(
    from_address: AddressClient, redis_proc: RedisExecutor
) -> None:
    async with from_address(OWNER_ADDRESS) as owner:
        user = await register(owner)
    name = str(user["username"])
    with redis_proc.stopped():
        async with from_address(OWNER_ADDRESS) as owner:
            assert (await _login(owner, name, PASSWORD)).status_code == 200
            codes = [(await _login(owner, "someone")).status_code for _ in range(LIMIT + 1)]
        assert codes == [401] * LIMIT + [429]
        attack = [r.status_code for r in await _attack(from_address, name, FREE + 3)]
        assert attack[: FREE + 1] == [401] * (FREE + 1)
        assert set(attack[FREE + 1 :]) == {429}
        async with from_address(OWNER_ADDRESS) as owner:
            assert (await _login(owner, name, PASSWORD)).status_code == 200
