"""Fixtures of the attack suites (tests/integration/test_owasp.py and
test_hostile_input.py): a client whose every response is kept and, after the
test, scanned for secrets; and the two-user world the route table acts on.

Imported by those modules: their `client` replaces the usual one there only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.platform.state import Platform
from tests.support.app import Started
from tests.support.surface import Exposure, World, build_world


@pytest.fixture(name="exposure")
def exposure_fixture() -> Exposure:
    return Exposure()


@pytest.fixture(name="client")
async def scanned_client(app: Started, platform: Platform, exposure: Exposure) -> AsyncIterator[httpx.AsyncClient]:
    """The usual client, with every response kept; after the test, none may leak a secret."""
    async with exposure.client(app.asgi) as http:
        yield http
    assert await exposure.leaks(platform) == []


@pytest.fixture(name="world")
async def world_fixture(client: httpx.AsyncClient) -> World:
    return await build_world(client)
