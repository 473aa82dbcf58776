"""Findings 3 and 8: errors are mapped by what they mean, on real PostgreSQL.

A unique violation is 409; a missing referent or a failed CHECK, and a value
the column cannot hold (SQLSTATE class 22, which asyncpg raises as a plain
DBAPIError), are 422; an unreachable dependency is 503. Anything else is a
500 whose traceback is logged and whose body says nothing.

Each case runs a real failing statement (or raises the OSError) inside a real
request: GET /products/, whose service call is replaced for the test.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.platform.session import read_connection
from app.platform.state import Platform
from app.products import service as products
from tests.support.api import account, login, register

# Stands in for products.page(platform, filters), the list's service call.
Failing = Callable[[Platform, Any], Awaitable[Any]]
GENERIC_500 = {"type", "title", "status", "detail", "request_id"}


def _statement(sql: str, **values: Any) -> Failing:
    async def run(platform: Platform, _: Any) -> Any:
        async with read_connection(platform) as connection:
            await connection.execute(text(sql), values)
        return [], 0

    return run


def _raising(error: BaseException) -> Failing:
    async def run(platform: Platform, _: Any) -> Any:
        raise error

    return run


MAPPED: list[tuple[str, Failing, int]] = [
    ("unique violation", _statement("INSERT INTO users SELECT * FROM users"), 409),
    (
        "foreign key violation",
        _statement(
            "INSERT INTO products (name, price, stock, owner_id, created_at, updated_at)"
            " VALUES ('x', 1, 1, 424242, now(), now())"
        ),
        422,
    ),
    (
        "check violation",
        _statement(
            "INSERT INTO products (name, price, stock, owner_id, created_at, updated_at)"
            " VALUES ('x', 0, 1, (SELECT min(id) FROM users), now(), now())"
        ),
        422,
    ),
    ("NUL in text (22021)", _statement("SELECT CAST(:value AS text)", value="a\x00b"), 422),
    ("numeric overflow (22003)", _statement("SELECT CAST(1e20 AS numeric(14, 2))"), 422),
    ("connection refused", _raising(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), 503),
    ("no route to host", _raising(OSError(errno.EHOSTUNREACH, "No route to host")), 503),
    ("name does not resolve", _raising(socket.gaierror(socket.EAI_NONAME, "Name does not resolve")), 503),
    ("timed out", _raising(TimeoutError()), 503),
]
UNEXPECTED: list[tuple[str, Failing]] = [
    (
        "not-null violation",
        _statement(
            "INSERT INTO products (price, stock, owner_id, created_at, updated_at)"
            " VALUES (1, 1, (SELECT min(id) FROM users), now(), now())"
        ),
    ),
    ("undefined table", _statement("SELECT * FROM no_such_table")),
    ("disk full", _raising(OSError(errno.ENOSPC, "No space left on device"))),
    ("permission denied", _raising(PermissionError(errno.EACCES, "Permission denied"))),
]


@pytest.mark.parametrize(("case", "failing", "status"), MAPPED, ids=[case for case, _, _ in MAPPED])
async def test_errors_are_mapped_by_meaning(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, case: str, failing: Failing, status: int
) -> None:
    await register(client)
    monkeypatch.setattr(products, "page", failing)
    response = await client.get("/products/")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if status == 503:
        assert response.headers["retry-after"] == "1"
    assert "SELECT" not in response.text
    assert "INSERT" not in response.text


@pytest.mark.parametrize(("case", "failing"), UNEXPECTED, ids=[case for case, _ in UNEXPECTED])
async def test_anything_else_is_a_logged_500(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: str,
    failing: Failing,
) -> None:
    await register(client)
    monkeypatch.setattr(products, "page", failing)
    with caplog.at_level(logging.ERROR, logger="storefront.errors"):
        response = await client.get("/products/")
    assert response.status_code == 500, response.text
    assert set(response.json()) == GENERIC_500
    assert response.json()["detail"] == "An unexpected error occurred"
    logged = [record for record in caplog.records if record.name == "storefront.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None, "the traceback is logged"


async def test_nul_in_the_login_name_is_4xx(client: httpx.AsyncClient) -> None:
    """Finding 3 as reported: a NUL byte in the login username was a 500 on PostgreSQL."""
    me = await account(client)
    for username in ("a\x00b", me.username + "\x00", "\x00"):
        response = await login(client, username)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
