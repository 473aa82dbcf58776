"""`make run` with nothing configured: migrations, then the service on SQLite
and the in-process cache, answering /readyz and the user flow."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import port_for
import pytest

from tests.support.http import serving
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
        "--log-config",
        str(REPO / "app" / "platform" / "log_config.json"),
    ]
    base = f"http://127.0.0.1:{port}"
    output = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with serving(command, f"{base}/livez", within=30, cwd=tmp_path, env=env, **output):
        yield base


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


async def test_embedded_default_serves_products_orders_and_stats(embedded_service: str) -> None:
    async with httpx.AsyncClient(base_url=embedded_service, timeout=30) as http:
        await http.post(
            "/users/", json={"email": "shop@example.com", "username": "shop", "password": "a good password"}
        )
        token = (await http.post("/auth/token", data={"username": "shop", "password": "a good password"})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}

        pen = (await http.post("/products/", json={"name": "Pen", "price": "0.10", "stock": 100}, headers=auth)).json()
        lamp = (await http.post("/products/", json={"name": "Lamp", "price": 19.99, "stock": 3}, headers=auth)).json()
        assert (await http.get(f"/products/{pen['id']}")).headers["x-cache"] == "MISS"
        assert (await http.get(f"/products/{pen['id']}")).headers["x-cache"] == "HIT"
        listed = (await http.get("/products/", params={"q": "LAM", "sort": "-price"})).json()
        assert [p["name"] for p in listed["items"]] == ["Lamp"]

        order = await http.post(
            "/orders/",
            json={"items": [{"product_id": pen["id"], "quantity": 3}]},
            headers={**auth, "Idempotency-Key": "k"},
        )
        replay = await http.post(
            "/orders/",
            json={"items": [{"product_id": pen["id"], "quantity": 3}]},
            headers={**auth, "Idempotency-Key": "k"},
        )
        assert order.status_code == replay.status_code == 201
        assert replay.json()["id"] == order.json()["id"]
        assert order.json()["total"] == "0.30"
        assert (await http.get(f"/products/{pen['id']}")).json()["stock"] == 97

        # Ten concurrent buyers for three lamps: SQLite serialises, nothing is oversold.
        attempts = await asyncio.gather(
            *(
                http.post("/orders/", json={"items": [{"product_id": lamp["id"], "quantity": 1}]}, headers=auth)
                for _ in range(10)
            )
        )
        assert sorted(r.status_code for r in attempts) == [201] * 3 + [409] * 7
        assert (await http.get(f"/products/{lamp['id']}")).json()["stock"] == 0

        stats = await http.get("/stats")
        assert stats.status_code == 200
        assert stats.json()["revenue"] == "60.27"  # 0.30 + 3 x 19.99, exactly
        assert (await http.get("/stats")).headers["x-cache"] == "HIT"
        cancelled = await http.post(f"/orders/{order.json()['id']}/cancel", headers=auth)
        assert cancelled.json()["status"] == "cancelled"
        assert (await http.get("/stats")).json()["revenue"] == "59.97"
        assert (await http.get(f"/products/{pen['id']}")).json()["stock"] == 100
