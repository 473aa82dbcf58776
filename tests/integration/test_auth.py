"""POST /auth/token, /auth/refresh (rotation, reuse detection), /auth/logout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from app.auth.dependencies import AuthServices
from app.platform.database import utcnow
from app.platform.state import Platform
from tests.support.api import PASSWORD, account, login, register


async def test_login_with_username_or_email_returns_token_pair(client: httpx.AsyncClient) -> None:
    user = await register(client)
    for identifier in (user["username"], user["email"], str(user["email"]).upper()):
        response = await login(client, str(identifier))
        assert response.status_code == 200, identifier
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        me = await client.get("/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["id"] == user["id"]


def _without_request_id(response: httpx.Response) -> dict[str, object]:
    return {k: v for k, v in response.json().items() if k != "request_id"}


async def test_unknown_user_and_wrong_password_get_the_same_answer(client: httpx.AsyncClient) -> None:
    user = await register(client)
    wrong_password = await login(client, str(user["username"]), "not the password")
    unknown_user = await login(client, "nobody-here", PASSWORD)

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.headers["www-authenticate"] == unknown_user.headers["www-authenticate"] == "Bearer"
    assert _without_request_id(wrong_password) == _without_request_id(unknown_user)


async def test_unknown_user_login_still_runs_a_password_verification(
    client: httpx.AsyncClient, auth: AuthServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal work, not just equal words: the unknown-user path verifies against
    a dummy hash, so response time does not reveal whether a user exists."""
    calls: list[str] = []
    original = auth.hasher.burn_time

    async def spy(password: str) -> None:
        calls.append(password)
        await original(password)

    monkeypatch.setattr(auth.hasher, "burn_time", spy)
    assert (await login(client, "ghost-user", "whatever-password")).status_code == 401
    assert calls == ["whatever-password"]


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "abc"},
        {"password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": "abc", "password": "x" * 129},
        {"username": "a" * 321, "password": PASSWORD},
    ],
)
async def test_malformed_login_form_is_422(client: httpx.AsyncClient, form: dict[str, str]) -> None:
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_login_as_json_instead_of_form_is_4xx(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json={"username": "abc", "password": PASSWORD})
    assert 400 <= response.status_code < 500


async def test_refresh_rotates_the_pair_and_uses_up_the_old_token(client: httpx.AsyncClient) -> None:
    me = await account(client)
    first = await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    assert first.status_code == 200
    pair = first.json()
    assert pair["refresh_token"] != me.refresh_token
    assert (
        await client.get("/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    ).status_code == 200

    second = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200


async def test_reusing_a_used_token_revokes_the_whole_family_durably(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    me = await account(client)
    rotated = (await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})).json()

    replay = await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    assert replay.status_code == 401
    assert replay.headers["www-authenticate"] == "Bearer"

    # The newest token of that login, never used, is dead too.
    descendant = await client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert descendant.status_code == 401
    async with platform.engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT revoked_at, revoked_reason FROM token_families WHERE user_id = :id"), {"id": me.id}
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].revoked_at is not None
    assert rows[0].revoked_reason == "reuse"


async def test_reuse_in_one_login_leaves_other_logins_alone(client: httpx.AsyncClient) -> None:
    me = await account(client)
    other_login = (await login(client, me.username)).json()
    await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})  # reuse

    response = await client.post("/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert response.status_code == 200


async def test_concurrent_refresh_with_one_token_exactly_one_wins(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """Reliability matrix #17: 1x200 + 1x401, and the family is revoked in the DB."""
    me = await account(client)
    responses = await asyncio.gather(
        *(client.post("/auth/refresh", json={"refresh_token": me.refresh_token}) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 401]
    async with platform.engine.connect() as connection:
        revoked = (
            await connection.execute(text("SELECT revoked_at FROM token_families WHERE user_id = :id"), {"id": me.id})
        ).scalar_one()
    assert revoked is not None


async def test_expired_refresh_token_is_401(client: httpx.AsyncClient, platform: Platform) -> None:
    me = await account(client)
    async with platform.engine.begin() as connection:
        await connection.execute(
            text("UPDATE refresh_tokens SET expires_at = :past"), {"past": utcnow() - timedelta(seconds=1)}
        )
    response = await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    assert response.status_code == 401


async def test_refresh_tokens_are_stored_hashed(client: httpx.AsyncClient, platform: Platform) -> None:
    me = await account(client)
    async with platform.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT token_hash FROM refresh_tokens"))).scalars().all()
    assert len(stored) == 1
    assert me.refresh_token not in stored[0]
    assert len(stored[0]) == 64


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"refresh_token": ""},
        {"refresh_token": "x" * 5000},
        {"refresh_token": 5},
        {"refresh_token": "a", "extra": 1},
    ],
)
async def test_malformed_refresh_body_is_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert (await client.post("/auth/refresh", json=body)).status_code == 422


async def test_garbage_or_access_token_as_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    me = await account(client)
    for token in ("garbage", me.access_token):
        assert (await client.post("/auth/refresh", json={"refresh_token": token})).status_code == 401


async def test_logout_ends_that_login(client: httpx.AsyncClient) -> None:
    me = await account(client)
    rotated = (await client.post("/auth/refresh", json={"refresh_token": me.refresh_token})).json()
    other_login = (await login(client, me.username)).json()

    response = await client.post("/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""

    assert (await client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})).status_code == 401
    assert (await client.post("/auth/refresh", json={"refresh_token": other_login["refresh_token"]})).status_code == 200


async def test_logout_with_unknown_token_is_204(client: httpx.AsyncClient) -> None:
    assert (await client.post("/auth/logout", json={"refresh_token": "never-issued"})).status_code == 204
