"""The attack surface as a table: every route, who may call it, and a valid
request for it. The OWASP and hostile-input suites drive the app from here.

`ROUTES` must name every route the app serves: test_owasp.py compares it
with the app's own routes, so a new route without an entry fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text

from app.platform.state import Platform
from tests.support.api import PASSWORD, Account, account, create_product, new_user_payload, place_order


class Access(Enum):
    PUBLIC = "anyone, signed in or not"
    OPTIONAL = "anyone; a token, when sent, must be valid"
    SIGNED_IN = "any signed-in user"
    OWNER_WRITES = "signed in; only the owner may change it (403 for others, as the contract says)"
    OWNER_ONLY = "signed in; another user's resource does not exist for the caller (404)"


@dataclass
class World:
    """Two users; each has a product and an order of it."""

    alice: Account
    bob: Account
    alice_product: int
    bob_product: int
    alice_order: int
    bob_order: int


async def build_world(client: httpx.AsyncClient) -> World:
    alice = await account(client, "alice")
    bob = await account(client, "bob")
    alice_product = int(str((await create_product(client, alice, name="Alice's lamp", stock=50))["id"]))
    bob_product = int(str((await create_product(client, bob, name="Bob's chair", stock=50))["id"]))
    orders = []
    for buyer, product in ((alice, alice_product), (bob, bob_product)):
        response = await place_order(client, buyer, [(product, 1)])
        assert response.status_code == 201, response.text
        orders.append(int(response.json()["id"]))
    return World(alice, bob, alice_product, bob_product, orders[0], orders[1])


# The keyword arguments of httpx's request() for a valid call on Alice's
# resources (headers excepted: the caller's token is added by the tests).
Request = dict[str, Any]


@dataclass(frozen=True)
class Route:
    access: Access
    request: Callable[[World], Request]
    body: str | None = None  # "json" or "form"

    @property
    def needs_token(self) -> bool:
        return self.access in (Access.SIGNED_IN, Access.OWNER_WRITES, Access.OWNER_ONLY)


def _get(url: str) -> Callable[[World], Request]:
    return lambda _: {"url": url}


def _login(world: World) -> Request:
    return {"url": "/auth/token", "data": {"username": world.alice.username, "password": PASSWORD}}


_DOCS = {
    path: Route(Access.PUBLIC, _get(path)) for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
}

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/health"): Route(Access.PUBLIC, _get("/health")),
    ("GET", "/livez"): Route(Access.PUBLIC, _get("/livez")),
    ("GET", "/readyz"): Route(Access.PUBLIC, _get("/readyz")),
    ("GET", "/metrics"): Route(Access.PUBLIC, _get("/metrics")),
    **{("GET", path): route for path, route in _DOCS.items()},
    **{("HEAD", path): route for path, route in _DOCS.items()},
    ("POST", "/users/"): Route(Access.PUBLIC, lambda _: {"url": "/users/", "json": new_user_payload("new")}, "json"),
    ("GET", "/users/me"): Route(Access.SIGNED_IN, _get("/users/me")),
    ("GET", "/users/{user_id}"): Route(Access.OPTIONAL, lambda w: {"url": f"/users/{w.alice.id}"}),
    ("POST", "/auth/token"): Route(Access.PUBLIC, _login, "form"),
    ("POST", "/auth/refresh"): Route(
        Access.PUBLIC, lambda w: {"url": "/auth/refresh", "json": {"refresh_token": w.alice.refresh_token}}, "json"
    ),
    ("POST", "/auth/logout"): Route(
        Access.PUBLIC, lambda w: {"url": "/auth/logout", "json": {"refresh_token": w.alice.refresh_token}}, "json"
    ),
    ("POST", "/products/"): Route(
        Access.SIGNED_IN,
        lambda _: {"url": "/products/", "json": {"name": "Desk", "price": "120.00", "description": "oak", "stock": 2}},
        "json",
    ),
    ("GET", "/products/"): Route(
        Access.PUBLIC, lambda _: {"url": "/products/", "params": {"q": "lamp", "min_price": "1", "max_price": "50"}}
    ),
    ("GET", "/products/{product_id}"): Route(Access.PUBLIC, lambda w: {"url": f"/products/{w.alice_product}"}),
    ("PATCH", "/products/{product_id}"): Route(
        Access.OWNER_WRITES,
        lambda w: {
            "url": f"/products/{w.alice_product}",
            "json": {"name": "Brighter lamp", "price": "21.50", "description": "new", "stock": 7},
        },
        "json",
    ),
    ("DELETE", "/products/{product_id}"): Route(Access.OWNER_WRITES, lambda w: {"url": f"/products/{w.alice_product}"}),
    ("POST", "/orders/"): Route(
        Access.SIGNED_IN,
        lambda w: {
            "url": "/orders/",
            "json": {"items": [{"product_id": w.alice_product, "quantity": 2}]},
            "headers": {"Idempotency-Key": "order-key-1"},
        },
        "json",
    ),
    ("GET", "/orders/"): Route(Access.SIGNED_IN, lambda _: {"url": "/orders/", "params": {"limit": 10}}),
    ("GET", "/orders/{order_id}"): Route(Access.OWNER_ONLY, lambda w: {"url": f"/orders/{w.alice_order}"}),
    ("POST", "/orders/{order_id}/cancel"): Route(
        Access.OWNER_ONLY, lambda w: {"url": f"/orders/{w.alice_order}/cancel"}
    ),
    ("GET", "/stats"): Route(Access.PUBLIC, _get("/stats")),
}


def route_ids(keys: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in keys]


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, hidden ones included."""
    return {(method, str(route.path)) for route in iter_route_contexts(app.routes) for method in (route.methods or ())}


def call(world: World, key: tuple[str, str], token: str | None) -> Request:
    """httpx request() arguments for `key` on Alice's resources, as the holder of `token`."""
    method, _ = key
    request = ROUTES[key].request(world)
    headers = dict(request.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return {"method": method, **request, "headers": headers}


TABLES = ("users", "token_families", "refresh_tokens", "products", "orders", "order_items")


async def table_digests(platform: Platform) -> dict[str, str]:
    """Row count and an MD5 of every row, per table: any write shows."""
    digests = {}
    async with platform.engine.connect() as connection:
        for table in TABLES:
            row = await connection.execute(
                text(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")  # noqa: S608
            )
            count, digest = row.one()
            digests[table] = f"{count} rows, {digest}"
    return digests


# JSON keys no response may carry, whatever their value.
_SECRET_KEY = re.compile(r"password|hash|digest|secret", re.IGNORECASE)


def _keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


@dataclass
class Exposure:
    """Every response a suite sees, scanned for secrets at the end (OWASP API3)."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        headers = " ".join(f"{name}: {value}" for name, value in response.headers.items())
        self.seen.append((f"{response.request.method} {response.request.url.path}", headers, response.text))

    def client(self, asgi: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://test", event_hooks={"response": [self.record]}
        )

    async def leaks(self, platform: Platform) -> list[str]:
        """What leaked: stored password hashes, refresh-token digests, plain
        passwords, or keys named like them."""
        async with platform.engine.connect() as connection:
            stored = [
                *(await connection.execute(text("SELECT password_hash FROM users"))).scalars(),
                *(await connection.execute(text("SELECT token_hash FROM refresh_tokens"))).scalars(),
            ]
        return self.find(stored)

    def find(self, stored: list[str], passwords: tuple[str, ...] = (PASSWORD,)) -> list[str]:
        """`stored`: the password hashes and token digests in the database."""
        secrets = [*stored, *passwords, "$argon2"]
        found = []
        for where, headers, body in self.seen:
            found += [f"{where}: {secret[:12]}…" for secret in secrets if secret in body or secret in headers]
            try:
                document = json.loads(body)
            except ValueError:
                continue
            if where.endswith("/openapi.json"):
                continue  # the schema names request fields such as "password"
            found += [f"{where}: key {key!r}" for key in _keys(document) if _SECRET_KEY.search(key)]
        return found
