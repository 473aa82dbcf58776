"""Small helpers that drive the API the way a client does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_user_payload(prefix: str = "user") -> dict[str, str]:
    n = next(_counter)
    return {"email": f"{prefix}{n}@example.com", "username": f"{prefix}{n}", "password": PASSWORD}


async def register(client: httpx.AsyncClient, prefix: str = "user") -> dict[str, str | int]:
    payload = new_user_payload(prefix)
    response = await client.post("/users/", json=payload)
    assert response.status_code == 201, response.text
    return {**payload, "id": response.json()["id"]}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def account(client: httpx.AsyncClient, prefix: str = "user") -> Account:
    user = await register(client, prefix)
    response = await login(client, str(user["username"]))
    assert response.status_code == 200, response.text
    tokens = response.json()
    return Account(
        id=int(user["id"]),
        username=str(user["username"]),
        email=str(user["email"]),
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


async def create_product(
    client: httpx.AsyncClient,
    owner: Account,
    *,
    name: str = "Widget",
    price: str = "19.99",
    stock: int = 10,
    **extra: object,
) -> dict[str, object]:
    response = await client.post(
        "/products/", json={"name": name, "price": price, "stock": stock, **extra}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def place_order(
    client: httpx.AsyncClient, buyer: Account, items: list[tuple[object, int]], key: str | None = None
) -> httpx.Response:
    headers = dict(buyer.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    payload = {"items": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in items]}
    return await client.post("/orders/", json=payload, headers=headers)
