"""Problem+json for every error, request ids, body limit, CORS, GZip, docs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import new_user_payload

INTERNALS = ("Traceback", "SELECT", "sqlalchemy", "RuntimeError", 'File "', "secret internals")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "diagnostic_routes": True,
        "cors_origins": "https://shop.example.com",
        "max_body_bytes": 64 * 1024,
    }


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/definitely/not/here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/users/me")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["allow"]


async def test_unhandled_error_is_generic_500_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/_diag/error", headers={"X-Request-ID": "trace-me-123"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "trace-me-123"
    body = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred",
        "request_id": "trace-me-123",
    }
    assert not any(marker in response.text for marker in INTERNALS)


@pytest.mark.parametrize("path", ["/health", "/users/999", "/nope", "/_diag/error"])
async def test_every_response_carries_a_request_id(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert 8 <= len(response.headers["x-request-id"]) <= 128


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("", False),
    ],
)
async def test_caller_request_id_is_reused_only_when_sane(client: httpx.AsyncClient, sent: str, kept: bool) -> None:
    response = await client.get("/health", headers={"X-Request-ID": sent})
    assert (response.headers["x-request-id"] == sent) is kept
    assert response.headers["x-request-id"]


async def test_body_over_the_limit_is_413_problem(client: httpx.AsyncClient) -> None:
    payload = new_user_payload()
    payload["password"] = "x" * (70 * 1024)
    response = await client.post("/users/", json=payload)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    response = await client.post("/users/", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_gzip_above_1kb_only(client: httpx.AsyncClient) -> None:
    big = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert big.headers.get("content-encoding") == "gzip"
    small = await client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


async def test_cors_allows_the_configured_origin_only(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = await client.options("/users/", headers={"Origin": "https://shop.example.com", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"

    refused = await client.options("/users/", headers={"Origin": "https://evil.example.net", **preflight})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/users/", "/users/me", "/users/{user_id}", "/auth/token", "/auth/refresh", "/auth/logout"} <= set(
        schema["paths"]
    )
    assert "/_diag/error" not in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200
