"""Findings 7 and 12: the OpenAPI document and 405s tell the whole truth.

Malformed JSON answered 400, which no operation declared; a 405 on a path
served by several routes named one route's methods only (`Allow: GET` on
/products/{id}, which also takes PATCH and DELETE).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import make_settings
from tests.support.api import account
from tests.support.surface import app_routes


def _methods_by_path() -> dict[str, set[str]]:
    served: dict[str, set[str]] = defaultdict(set)
    for method, path in app_routes(create_app(make_settings())):
        served[path].add(method)
    return dict(served)


METHODS_BY_PATH = _methods_by_path()


def _concrete(path: str) -> str:
    return "/".join("1" if part.startswith("{") else part for part in path.split("/"))


@pytest.mark.parametrize("path", sorted(METHODS_BY_PATH))
async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient, path: str) -> None:
    served = METHODS_BY_PATH[path]
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - served):
        response = await client.request(method, _concrete(path))
        assert response.status_code == 405, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.headers["allow"].split(", ")) == served, (method, path)


async def test_405_on_a_product_names_patch_and_delete(client: httpx.AsyncClient) -> None:
    response = await client.put("/products/1", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE"


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in openapi["paths"].items() for method, op in item.items()]


async def test_every_operation_declares_what_any_request_can_get(client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for method, path, operation in _operations(openapi):
        responses = operation["responses"]
        expected = {"413", "500", "503"} | ({"400", "422"} if "requestBody" in operation else set())
        assert expected <= set(responses), (method, path)
        for status, response in responses.items():
            if status >= "400":
                assert response["content"] == {"application/problem+json": problem}, (method, path, status)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


@pytest.mark.parametrize(
    ("content", "content_type"), [(b"{not json", "application/json"), (b"a=%zz", "application/x-www-form-urlencoded")]
)
async def test_malformed_bodies_answer_a_declared_status(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    me = await account(client)
    openapi = (await client.get("/openapi.json")).json()
    for method, path, operation in _operations(openapi):
        if content_type not in operation.get("requestBody", {}).get("content", {}):
            continue
        headers = {**me.headers, "content-type": content_type}
        response = await client.request(method, _concrete(path), content=content, headers=headers)
        assert response.status_code in (400, 422), (method, path, response.text)
        assert str(response.status_code) in operation["responses"], (method, path)
