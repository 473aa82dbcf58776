"""On a real uvicorn process, as the image runs it (--no-proxy-headers):
whose X-Forwarded-For counts, and /metrics only on METRICS_PORT."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import port_for
from sqlalchemy.engine import URL

from tests.support.uvicorn import uvicorn_server


@contextmanager
def uvicorn_app(database_url: URL, redis_url: str, **env: str) -> Iterator[str]:
    database = database_url.render_as_string(hide_password=False)
    with uvicorn_server({"DATABASE_URL": database, "REDIS_URL": redis_url, **env}) as server:
        yield server.base


def _register(http: httpx.Client, forwarded_for: str) -> int:
    name = f"u{uuid.uuid4().hex[:12]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "a good password"}
    return http.post("/users/", json=body, headers={"X-Forwarded-For": forwarded_for}).status_code


def test_a_client_cannot_pick_its_address_by_default(database_url: URL, redis_url: str) -> None:
    """A fresh X-Forwarded-For on each request does not escape the
    per-address limit: nobody is trusted unless TRUSTED_PROXIES says so."""
    with uvicorn_app(database_url, redis_url, REGISTER_RATE_LIMIT="3") as base, httpx.Client(base_url=base) as http:
        statuses = [_register(http, f"203.0.113.{i}") for i in range(1, 6)]
    assert statuses == [201, 201, 201, 429, 429]


def test_a_trusted_proxy_supplies_the_client_address(database_url: URL, redis_url: str) -> None:
    with (
        uvicorn_app(database_url, redis_url, REGISTER_RATE_LIMIT="3", TRUSTED_PROXIES="127.0.0.1") as base,
        httpx.Client(base_url=base) as http,
    ):
        statuses = [_register(http, f"203.0.113.{i}") for i in range(1, 6)]
        # The limit still holds per client address behind the proxy.
        repeated = [_register(http, "198.51.100.9") for _ in range(4)]
    assert statuses == [201] * 5
    assert repeated == [201, 201, 201, 429]


def test_metrics_port_serves_metrics_and_the_api_port_does_not(database_url: URL, redis_url: str) -> None:
    metrics_port = port_for.select_random()
    with uvicorn_app(database_url, redis_url, METRICS_PORT=str(metrics_port)) as base:
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 404
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert scrape.status_code == 200
    assert 'http_requests_total{handler="/health",method="GET",status="200"} 1.0' in scrape.text
    assert "db_pool_checked_out" in scrape.text
