"""`make run` with nothing configured: migrations, then the service on SQLite
and the in-process cache, answering /readyz and the user flow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import port_for
import pytest

from tests.support.servers import REPO

APP_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENVIRONMENT", "CORS_ORIGINS", "LOG_LEVEL")


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    # The same two steps as `make run`, from an empty directory.
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (tmp_path / "storefront.db").exists()
    port = port_for.select_random()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/livez", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the service exited during startup"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_embedded_default_serves_the_user_flow(embedded_service: str) -> None:
    with httpx.Client(base_url=embedded_service, timeout=10) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "cache": "disabled"}}

        created = http.post(
            "/users/", json={"email": "new@example.com", "username": "newcomer", "password": "a good password"}
        )
        assert created.status_code == 201
        assert http.get(created.headers["location"]).status_code == 200

        tokens = http.post("/auth/token", data={"username": "newcomer", "password": "a good password"}).json()
        me = http.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json()["username"] == "newcomer"
        refreshed = http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        assert http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
