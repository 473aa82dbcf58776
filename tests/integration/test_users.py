"""POST /users/, GET /users/{id}, GET /users/me."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.platform.state import Platform
from tests.support.api import PASSWORD, account, new_user_payload, register

USER_FIELDS = {"id", "email", "username", "created_at", "is_active"}
PUBLIC_FIELDS = {"id", "username", "created_at"}


async def test_register_returns_201_with_location_and_public_fields(client: httpx.AsyncClient) -> None:
    payload = new_user_payload()
    response = await client.post("/users/", json=payload)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == payload["email"]
    assert body["username"] == payload["username"]
    assert body["is_active"] is True
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert response.headers["location"] == f"/users/{body['id']}"


async def test_password_is_stored_hashed_with_argon2id(client: httpx.AsyncClient, platform: Platform) -> None:
    user = await register(client)
    async with platform.engine.connect() as connection:
        stored = (
            await connection.execute(text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]})
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


# The commit-before-response guarantee (matrix row 4) is proven against a real
# uvicorn server in tests/integration/test_faults.py: in-process, httpx's
# ASGITransport returns only after the whole ASGI call, dependency teardown
# included, so a test here would pass with the commit moved after the response.


@pytest.mark.parametrize(
    "change",
    [
        {"email": "{email}"},  # same e-mail, other username
        {"email": "{email_upper}"},  # e-mail compared case-insensitively
        {"username": "{username}"},  # same username
        {"username": "{username_upper}"},
    ],
)
async def test_duplicate_email_or_username_is_409(client: httpx.AsyncClient, change: dict[str, str]) -> None:
    first = await register(client)
    values = {
        "email": str(first["email"]),
        "email_upper": str(first["email"]).upper(),
        "username": str(first["username"]),
        "username_upper": str(first["username"]).upper(),
    }
    payload = new_user_payload("other")
    payload.update({key: template.format(**values) for key, template in change.items()})

    response = await client.post("/users/", json=payload)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409


async def test_concurrent_duplicate_registrations_create_one_user(client: httpx.AsyncClient) -> None:
    payload = new_user_payload("race")
    responses = await asyncio.gather(*(client.post("/users/", json=payload) for _ in range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409]


BAD_USERS: list[tuple[str, dict[str, Any]]] = [
    ("missing password", {"email": "a@example.com", "username": "abc"}),
    ("bad email", {"email": "not-an-email", "username": "abc", "password": PASSWORD}),
    ("short username", {"email": "a@example.com", "username": "ab", "password": PASSWORD}),
    ("long username", {"email": "a@example.com", "username": "a" * 51, "password": PASSWORD}),
    ("username with space", {"email": "a@example.com", "username": "a b c", "password": PASSWORD}),
    ("username with NUL", {"email": "a@example.com", "username": "abc\x00", "password": PASSWORD}),
    ("email with NUL", {"email": "a\x00@example.com", "username": "abc", "password": PASSWORD}),
    ("short password", {"email": "a@example.com", "username": "abc", "password": "short"}),
    ("long password", {"email": "a@example.com", "username": "abc", "password": "x" * 129}),
    ("unknown field", {"email": "a@example.com", "username": "abc", "password": PASSWORD, "is_active": False}),
    ("mass assignment of id", {"email": "a@example.com", "username": "abc", "password": PASSWORD, "id": 1}),
    ("wrong types", {"email": 5, "username": ["abc"], "password": {"x": 1}}),
    ("huge integer", {"email": "a@example.com", "username": 10**40, "password": PASSWORD}),
]


@pytest.mark.parametrize(("case", "payload"), BAD_USERS, ids=[case for case, _ in BAD_USERS])
async def test_invalid_registration_is_422_problem(
    client: httpx.AsyncClient, case: str, payload: dict[str, Any]
) -> None:
    response = await client.post("/users/", json=payload)

    assert response.status_code == 422, case
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert body["title"] == "Unprocessable Content"
    assert body["errors"]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])
    assert PASSWORD not in response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"[]", "application/json"),
        (b"\xff\xfe garbage", "application/json"),
        (b"email=a@example.com&username=abc&password=xxxxxxxxx", "application/x-www-form-urlencoded"),
        (b'{"email": "a@example.com"}', "text/plain"),
        (b"[" * 1000 + b"]" * 1000, "application/json"),
    ],
)
async def test_malformed_bodies_are_4xx(client: httpx.AsyncClient, content: bytes, content_type: str) -> None:
    response = await client.post("/users/", content=content, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_get_user_by_id_shows_others_the_public_profile_only(client: httpx.AsyncClient) -> None:
    """Finding 10 (contract v1.1): ids are sequential, so a profile anyone can
    read must not carry the e-mail address."""
    user = await register(client)
    other = await account(client, "other")
    for headers in ({}, other.headers):
        response = await client.get(f"/users/{user['id']}", headers=headers)
        assert response.status_code == 200
        assert response.json()["username"] == user["username"]
        assert set(response.json()) == PUBLIC_FIELDS
        assert str(user["email"]) not in response.text


async def test_get_user_by_id_shows_the_caller_its_full_record(client: httpx.AsyncClient) -> None:
    me = await account(client)
    response = await client.get(f"/users/{me.id}", headers=me.headers)
    assert response.status_code == 200
    assert set(response.json()) == USER_FIELDS
    assert response.json()["email"] == me.email


@pytest.mark.parametrize("authorization", ["Bearer not.a.jwt", "Bearer", "Basic dXNlcjpwYXNz", "Bearer {refresh}"])
async def test_get_user_by_id_with_a_bad_token_is_401(client: httpx.AsyncClient, authorization: str) -> None:
    """Signing in is optional there, but a credential that is sent must be valid."""
    me = await account(client)
    headers = {"Authorization": authorization.format(refresh=me.refresh_token)}
    response = await client.get(f"/users/{me.id}", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("user_id", ["999999", "0", "-1", "abc", str(2**40), "1.5"])
async def test_get_unknown_or_invalid_user_id_is_4xx(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get(f"/users/{user_id}")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_me_returns_the_caller(client: httpx.AsyncClient) -> None:
    me = await account(client)
    response = await client.get("/users/me", headers=me.headers)
    assert response.status_code == 200
    assert response.json()["id"] == me.id
    assert set(response.json()) == USER_FIELDS


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
async def test_me_without_valid_token_is_401_with_www_authenticate(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    me = await account(client)
    response = await client.get("/users/me", headers={"Authorization": f"Bearer {me.refresh_token}"})
    assert response.status_code == 401


async def test_inactive_user_is_refused(client: httpx.AsyncClient, platform: Platform) -> None:
    me = await account(client)
    async with platform.engine.begin() as connection:
        await connection.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": me.id})
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401
    login = await client.post("/auth/token", data={"username": me.username, "password": PASSWORD})
    assert login.status_code == 401
