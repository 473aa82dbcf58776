"""OWASP API Security Top 10, driven by the route table (tests/support/surface.py).

Reliability matrix #13 (BOLA), #14 (mass assignment, excessive exposure) and
#15 (missing authentication), on real PostgreSQL. Every response these tests
see is scanned for passwords, hashes and token digests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.main import create_app
from app.platform.config import Settings
from app.platform.state import Platform
from tests.support.scanned import exposure_fixture, scanned_client, world_fixture  # noqa: F401 (the suite's fixtures)
from tests.support.surface import (
    ROUTES,
    Access,
    Exposure,
    World,
    app_routes,
    call,
    route_ids,
    table_digests,
)
from tests.support.tokens import ATTACK_NAMES, claims, forged_tokens, sign

PROTECTED = [key for key, route in ROUTES.items() if route.needs_token]
OWNER_SCOPED = [key for key, route in ROUTES.items() if route.access in (Access.OWNER_ONLY, Access.OWNER_WRITES)]
JSON_BODIES = [key for key, route in ROUTES.items() if route.body == "json"]
# What another signed-in user gets on Alice's resource.
FOREIGN_STATUS = {Access.OWNER_ONLY: 404, Access.OWNER_WRITES: 403}


def test_route_table_names_every_route(settings: Settings) -> None:
    """A new route must say in the table who may call it, or this fails."""
    served = app_routes(create_app(settings))
    assert served - set(ROUTES) == set(), "routes missing from tests/support/surface.py"
    assert set(ROUTES) - served == set(), "table entries for routes the app does not serve"


@pytest.mark.parametrize("key", list(ROUTES), ids=route_ids(list(ROUTES)))
async def test_every_route_answers_its_valid_request(client: httpx.AsyncClient, world: World, key: Any) -> None:
    """The table's requests are valid (so the refusals below are about access alone)."""
    response = await client.request(**call(world, key, world.alice.access_token))
    assert 200 <= response.status_code < 300, response.text


@pytest.mark.parametrize("token", [None, "not.a.jwt", ""], ids=["no token", "bad token", "empty token"])
@pytest.mark.parametrize("key", PROTECTED, ids=route_ids(PROTECTED))
async def test_protected_route_is_401_without_a_valid_token(
    client: httpx.AsyncClient, platform: Platform, world: World, key: Any, token: str | None
) -> None:
    before = await table_digests(platform)
    response = await client.request(**call(world, key, token))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert await table_digests(platform) == before


@pytest.mark.parametrize("attack", ATTACK_NAMES)
async def test_a_forged_token_for_a_real_user_is_401_on_every_protected_route(
    client: httpx.AsyncClient, platform: Platform, world: World, attack: str
) -> None:
    """Each forgery names Alice, who exists: the genuine token for her works
    (the control), the forged one is refused everywhere and changes nothing."""
    genuine = sign(claims(sub=str(world.alice.id)))
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {genuine}"})).status_code == 200
    token = forged_tokens(str(world.alice.id))[attack]
    before = await table_digests(platform)
    for key in PROTECTED:
        response = await client.request(**call(world, key, token))
        assert response.status_code == 401, (key, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    assert await table_digests(platform) == before


async def test_optional_auth_still_refuses_a_bad_token(client: httpx.AsyncClient, world: World) -> None:
    for key, route in ROUTES.items():
        if route.access is Access.OPTIONAL:
            for headers in ({"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic YWxpY2U6cHc="}):
                response = await client.request(**{**call(world, key, None), "headers": headers})
                assert response.status_code == 401, (key, headers)
                assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", OWNER_SCOPED, ids=route_ids(OWNER_SCOPED))
async def test_another_users_resource_is_refused_and_untouched(
    client: httpx.AsyncClient, platform: Platform, world: World, key: Any
) -> None:
    """BOLA: Bob on Alice's ids. Orders are private (404, as if they did not
    exist); products are public but only their owner changes them (403)."""
    before = await table_digests(platform)
    response = await client.request(**call(world, key, world.bob.access_token))
    assert response.status_code == FOREIGN_STATUS[ROUTES[key].access], response.text
    assert await table_digests(platform) == before


async def test_lists_hold_no_foreign_rows(client: httpx.AsyncClient, world: World) -> None:
    for user, own in ((world.alice, world.alice_order), (world.bob, world.bob_order)):
        page = (await client.get("/orders/", params={"limit": 100}, headers=user.headers)).json()
        assert [order["id"] for order in page["items"]] == [own]
        assert {order["user_id"] for order in page["items"]} == {user.id}
        assert page["total"] == 1


async def test_other_users_profile_has_no_email(client: httpx.AsyncClient, world: World) -> None:
    """API3: e-mail addresses of other users are never shown (ids are sequential)."""
    for headers in ({}, world.bob.headers):
        response = await client.get(f"/users/{world.alice.id}", headers=headers)
        assert response.status_code == 200
        assert set(response.json()) == {"id", "username", "created_at"}
        assert world.alice.email not in response.text


def _forbidden_fields(openapi: dict[str, Any], key: tuple[str, str]) -> dict[str, Any]:
    """Fields the answer has but the request must not set (ids, owners,
    statuses, totals, timestamps), plus privileges nobody has."""
    method, path = key
    operation = openapi["paths"][path][method.lower()]
    schemas = openapi["components"]["schemas"]

    def properties(content: dict[str, Any]) -> set[str]:
        ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
        return set(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))

    sent = properties(operation["requestBody"]["content"])
    answered = set().union(*(properties(r.get("content", {})) for s, r in operation["responses"].items() if s < "300"))
    fields: dict[str, Any] = dict.fromkeys(answered - sent, 1)
    fields.update({"is_admin": True, "role": "admin", "password_hash": "x", "owner_id": 1, "user_id": 1})
    return {name: value for name, value in fields.items() if name not in sent}


@pytest.mark.parametrize("key", JSON_BODIES, ids=route_ids(JSON_BODIES))
async def test_unknown_and_forbidden_fields_are_422(
    client: httpx.AsyncClient, platform: Platform, world: World, key: Any
) -> None:
    """Mass assignment: each field a client must not set is refused on its own,
    and nothing is written."""
    openapi = (await client.get("/openapi.json")).json()
    fields = _forbidden_fields(openapi, key)
    assert fields
    for name, value in fields.items():
        request = call(world, key, world.alice.access_token)
        request["json"] = {**request["json"], name: value}
        before = await table_digests(platform)
        response = await client.request(**request)
        assert response.status_code == 422, (name, response.text)
        assert await table_digests(platform) == before, name


@pytest.mark.parametrize("field", ["unit_price", "name", "price", "id", "order_id"])
async def test_order_lines_cannot_set_their_price(
    client: httpx.AsyncClient, platform: Platform, world: World, field: str
) -> None:
    before = await table_digests(platform)
    line = {"product_id": world.bob_product, "quantity": 1, field: "0.01"}
    response = await client.post("/orders/", json={"items": [line]}, headers=world.alice.headers)
    assert response.status_code == 422
    assert await table_digests(platform) == before


async def test_no_response_leaks_a_secret_even_when_asked(
    client: httpx.AsyncClient, platform: Platform, exposure: Exposure, world: World
) -> None:
    """Calls every route as the owner, then checks the scan itself catches a leak."""
    for key in ROUTES:
        await client.request(**call(world, key, world.alice.access_token))
    assert await exposure.leaks(platform) == []
    exposure.seen.append(("GET /planted", "", '{"password_hash": "x"}'))
    assert await exposure.leaks(platform) == ["GET /planted: key 'password_hash'"]
    exposure.seen.pop()
