"""Reliability matrix #21: security misconfiguration, with production settings.

A forced exception answers a generic 500 with the request id only; a CORS
preflight from an unknown origin is refused; /docs, /redoc and /openapi.json
follow the documented policy (off in production unless DOCS_ENABLED says so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from app.platform.config import Settings
from app.products import service as products
from tests.conftest import make_settings
from tests.integration.conftest import app_client

ORIGIN = "https://shop.example.com"
DOCS = ("/docs", "/redoc", "/openapi.json")
INTERNALS = ("Traceback", "RuntimeError", "sqlalchemy", 'File "', "secret internals", "SELECT")


def production(database_url: URL, redis_url: str, **overrides: Any) -> Settings:
    return make_settings(
        environment="production",
        database_url=database_url.render_as_string(hide_password=False),
        redis_url=redis_url,
        cors_origins=ORIGIN,
        **overrides,
    )


@pytest.fixture
async def client(
    database_url: URL, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("DOCS_ENABLED", raising=False)
    async with app_client(production(database_url, redis_url)) as http:
        yield http


async def test_a_forced_exception_is_a_generic_500(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def explode(*_: Any) -> Any:
        raise RuntimeError("secret internals: SELECT password_hash FROM users")

    monkeypatch.setattr(products, "page", explode)
    response = await client.get("/products/", headers={"X-Request-ID": "prod-trace-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred",
        "request_id": "prod-trace-1",
    }
    assert not any(marker in response.text for marker in INTERNALS)


async def test_cors_from_an_unknown_origin_is_refused(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    refused = await client.options("/products/", headers={"Origin": "https://evil.example.net", **preflight})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await client.get("/products/", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in simple.headers
    allowed = await client.options("/products/", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


async def test_docs_are_not_served_in_production_by_default(client: httpx.AsyncClient) -> None:
    for path in DOCS:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_docs_enabled_explicitly_are_served_in_production(
    database_url: URL, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCS_ENABLED", "true")
    async with app_client(production(database_url, redis_url)) as http:
        for path in DOCS:
            assert (await http.get(path)).status_code == 200, path


async def test_no_debug_details_on_404_and_405(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/nope"), await client.put("/products/1")):
        assert set(response.json()) == {"type", "title", "status", "detail", "request_id"}
        assert not any(marker in response.text for marker in INTERNALS)
