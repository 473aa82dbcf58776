"""SIGTERM to the container (what the kubelet sends): drain with /readyz at
503, finish the in-flight request, exit 0 within the grace period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import port_for
import pytest
from sqlalchemy.engine import URL

from tests.image.conftest import server_env
from tests.image.containers import Container, container, docker, server_command, wait_until_serving

DRAIN_SECONDS = 2
SLOW_REQUEST_SECONDS = 5
# --timeout-graceful-shutdown in the image's CMD.
GRACEFUL_TIMEOUT = 20


@pytest.fixture
def draining_server(
    image: str, image_config: dict[str, Any], migrated_database: URL, redis_url: str
) -> Iterator[tuple[Container, str]]:
    port = int(port_for.select_random())
    # The slow request is a diagnostic route, which production refuses.
    env = server_env(
        migrated_database,
        redis_url,
        ENVIRONMENT="development",
        DIAGNOSTIC_ROUTES="true",
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
    )
    with container(image, *server_command(image_config, port), env=env) as handle:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(handle, base_url)
        yield handle, base_url


async def _status(http: httpx.AsyncClient, url: str) -> int | None:
    try:
        return (await http.get(url, timeout=2)).status_code
    except httpx.TransportError:
        return None


async def test_sigterm_drains_finishes_the_slow_request_and_exits_0(
    draining_server: tuple[Container, str],
) -> None:
    handle, base_url = draining_server
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        assert await _status(http, "/readyz") == 200
        slow = asyncio.create_task(http.get("/_diag/sleep", params={"seconds": SLOW_REQUEST_SECONDS}))
        await asyncio.sleep(0.5)
        docker("kill", "--signal", "TERM", handle.id)
        signalled = time.monotonic()
        await asyncio.sleep(0.3)

        # Draining: still serving, no longer ready.
        assert await _status(http, "/readyz") == 503
        assert await _status(http, "/livez") == 200

        response = await slow
    assert response.status_code == 200, response.text
    assert response.json() == {"slept": SLOW_REQUEST_SECONDS}

    exit_code = await asyncio.to_thread(handle.wait, DRAIN_SECONDS + GRACEFUL_TIMEOUT + 10)
    elapsed = time.monotonic() - signalled
    logs = handle.logs()
    # uvicorn re-raises SIGTERM after its graceful shutdown; PID 1 of a
    # container has no default action for it, so the process ends normally.
    assert exit_code == 0, logs
    assert not handle.state()["OOMKilled"]
    # Done once the request was: well inside drain + graceful timeout.
    assert elapsed < DRAIN_SECONDS + GRACEFUL_TIMEOUT, elapsed
    assert "Finished server process" in logs
