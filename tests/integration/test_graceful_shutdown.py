"""SIGTERM on a real uvicorn process: drain with /readyz at 503, finish
in-flight requests, cancel the ones that outlive the graceful timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import port_for
import pytest
from sqlalchemy.engine import URL

from tests.conftest import TEST_SECRET
from tests.support.http import serving
from tests.support.servers import REPO


@pytest.fixture
def server(database_url: URL, redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = port_for.select_random()
    env = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "DIAGNOSTIC_ROUTES": "true",
        "SHUTDOWN_DRAIN_SECONDS": "2",
    }
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "on", "--timeout-graceful-shutdown", "4",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    with serving(command, f"{base}/livez", within=30, cwd=REPO, env=env, **output) as process:
        yield process, base


async def _readyz_status(base: str) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{base}/readyz")).status_code
    except httpx.TransportError:
        return None  # listener already closed


async def test_sigterm_drains_and_finishes_in_flight_requests(server: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = server
    assert await _readyz_status(base) == 200
    async with httpx.AsyncClient(timeout=30) as http:
        assert "close" not in (await http.get(f"{base}/livez")).headers.get("connection", "")
        slow = asyncio.create_task(http.get(f"{base}/_diag/sleep", params={"seconds": 3}))
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)

        # During the drain: still serving, but no longer ready.
        assert await _readyz_status(base) == 503
        draining = await http.get(f"{base}/livez")
        assert draining.status_code == 200
        # Kept-alive clients are told to leave before the server closes idle connections.
        assert draining.headers["connection"] == "close"

        response = await slow
    assert response.status_code == 200
    assert response.json() == {"slept": 3}
    returncode = await asyncio.to_thread(process.wait, 15)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as PID 1 in a
    # container that signal is ignored and the exit code is 0.
    assert returncode in (0, -signal.SIGTERM)
    output = process.stdout.read().decode() if process.stdout else ""
    assert "shutting down" in output


async def test_request_longer_than_the_graceful_timeout_is_cancelled(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, base = server
    async with httpx.AsyncClient(timeout=60) as http:
        too_slow = asyncio.create_task(http.get(f"{base}/_diag/sleep", params={"seconds": 60}))
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        # drain (2 s) + graceful timeout (4 s), well before the request's 60 s
        returncode = await asyncio.to_thread(process.wait, 20)
        response = await too_slow
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert returncode in (0, -signal.SIGTERM)
