"""Orders: atomic stock, idempotency, cancellation, snapshots, constant queries."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from app.platform.state import Platform
from tests.support.api import Account, account, create_product, place_order

ORDER_FIELDS = {"id", "user_id", "status", "total", "items", "created_at"}


async def _stock(client: httpx.AsyncClient, product: dict[str, Any]) -> int:
    stock: int = (await client.get(f"/products/{product['id']}")).json()["stock"]
    return stock


async def test_order_takes_stock_and_totals_exactly(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    pen = await create_product(client, owner, name="Pen", price="0.10", stock=10)
    book = await create_product(client, owner, name="Book", price="19.99", stock=5)

    response = await place_order(client, buyer, [(book["id"], 2), (pen["id"], 3)])

    assert response.status_code == 201
    order = response.json()
    assert set(order) == ORDER_FIELDS
    assert order["status"] == "created"
    assert order["user_id"] == buyer.id
    assert order["total"] == "40.28"  # 0.10 x 3 + 19.99 x 2, exactly
    by_product = {item["product_id"]: item for item in order["items"]}
    assert by_product == {
        pen["id"]: {"product_id": pen["id"], "name": "Pen", "quantity": 3, "unit_price": "0.10"},
        book["id"]: {"product_id": book["id"], "name": "Book", "quantity": 2, "unit_price": "19.99"},
    }
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert await _stock(client, pen) == 7
    assert await _stock(client, book) == 3


async def test_insufficient_stock_is_409_and_changes_nothing(client: httpx.AsyncClient, platform: Platform) -> None:
    owner, buyer = await account(client), await account(client)
    plenty = await create_product(client, owner, stock=100)
    scarce = await create_product(client, owner, stock=1)

    response = await place_order(client, buyer, [(plenty["id"], 5), (scarce["id"], 2)])

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert await _stock(client, plenty) == 100
    assert await _stock(client, scarce) == 1
    async with platform.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 0


async def test_unknown_or_deleted_product_is_404_and_changes_nothing(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    kept = await create_product(client, owner, stock=10)
    gone = await create_product(client, owner, stock=10)
    await client.delete(f"/products/{gone['id']}", headers=owner.headers)

    for missing in (gone["id"], 999_999):
        response = await place_order(client, buyer, [(kept["id"], 1), (missing, 1)])
        assert response.status_code == 404
    assert await _stock(client, kept) == 10


BAD_ORDERS: dict[str, Any] = {
    "no items": {"items": []},
    "51 items": {"items": [{"product_id": i, "quantity": 1} for i in range(1, 52)]},
    "duplicate product": {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]},
    "zero quantity": {"items": [{"product_id": 1, "quantity": 0}]},
    "quantity 1001": {"items": [{"product_id": 1, "quantity": 1001}]},
    "huge product id": {"items": [{"product_id": 2**40, "quantity": 1}]},
    "string quantity": {"items": [{"product_id": 1, "quantity": "lots"}]},
    "unknown field": {"items": [{"product_id": 1, "quantity": 1}], "user_id": 1},
    "no body fields": {},
}


@pytest.mark.parametrize("payload", BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
async def test_invalid_order_is_422(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    buyer = await account(client)
    response = await client.post("/orders/", json=payload, headers=buyer.headers)
    assert response.status_code == 422


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"has space", "ünicode".encode()])
async def test_invalid_idempotency_key_is_4xx(client: httpx.AsyncClient, key: bytes) -> None:
    buyer = await account(client)
    owner = await account(client)
    product = await create_product(client, owner)
    headers = [(name.encode(), value.encode()) for name, value in buyer.headers.items()]
    headers.append((b"Idempotency-Key", key))
    response = await client.post(
        "/orders/", json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=headers
    )
    assert 400 <= response.status_code < 500


async def test_orders_need_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.post("/orders/", json={"items": [{"product_id": 1, "quantity": 1}]})).status_code == 401
    assert (await client.get("/orders/")).status_code == 401
    assert (await client.get("/orders/1")).status_code == 401
    assert (await client.post("/orders/1/cancel")).status_code == 401


async def test_orders_of_others_are_404_and_never_listed(client: httpx.AsyncClient) -> None:
    owner, alice, bob = await account(client), await account(client), await account(client)
    product = await create_product(client, owner)
    order = (await place_order(client, alice, [(product["id"], 1)])).json()

    assert (await client.get(f"/orders/{order['id']}", headers=alice.headers)).status_code == 200
    assert (await client.get(f"/orders/{order['id']}", headers=bob.headers)).status_code == 404
    assert (await client.post(f"/orders/{order['id']}/cancel", headers=bob.headers)).status_code == 404
    assert (await client.get("/orders/", headers=bob.headers)).json()["total"] == 0
    assert (await client.get(f"/orders/{order['id']}", headers=alice.headers)).json()["status"] == "created"


async def test_cancel_gives_stock_back_once(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=5)
    order = (await place_order(client, buyer, [(product["id"], 3)])).json()
    assert await _stock(client, product) == 2

    cancelled = await client.post(f"/orders/{order['id']}/cancel", headers=buyer.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert await _stock(client, product) == 5

    again = await client.post(f"/orders/{order['id']}/cancel", headers=buyer.headers)
    assert again.status_code == 409
    assert await _stock(client, product) == 5


async def test_concurrent_cancels_give_stock_back_once(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=5)
    order = (await place_order(client, buyer, [(product["id"], 3)])).json()
    responses = await asyncio.gather(
        *(client.post(f"/orders/{order['id']}/cancel", headers=buyer.headers) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    assert await _stock(client, product) == 5


async def test_order_keeps_name_and_price_as_they_were(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, name="Mug", price="8.00")
    order = (await place_order(client, buyer, [(product["id"], 1)])).json()

    await client.patch(f"/products/{product['id']}", json={"name": "Big Mug", "price": "12.00"}, headers=owner.headers)

    kept = (await client.get(f"/orders/{order['id']}", headers=buyer.headers)).json()
    assert kept["items"][0]["name"] == "Mug"
    assert kept["items"][0]["unit_price"] == "8.00"
    assert kept["total"] == "8.00"


async def test_twenty_concurrent_orders_never_oversell(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    buyers = [await account(client) for _ in range(4)]
    product = await create_product(client, owner, stock=5)

    responses = await asyncio.gather(
        *(place_order(client, buyers[i % len(buyers)], [(product["id"], 1)]) for i in range(20))
    )

    codes = [r.status_code for r in responses]
    assert codes.count(201) == 5
    assert codes.count(409) == 15
    assert await _stock(client, product) == 0


async def test_idempotency_key_returns_the_first_order_and_changes_nothing(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=10)
    first = await place_order(client, buyer, [(product["id"], 2)], key="order-abc-1")
    again = await place_order(client, buyer, [(product["id"], 2)], key="order-abc-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _stock(client, product) == 8
    assert (await client.get("/orders/", headers=buyer.headers)).json()["total"] == 1


async def test_same_key_with_another_request_is_422(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=10)
    assert (await place_order(client, buyer, [(product["id"], 2)], key="k1")).status_code == 201
    assert (await place_order(client, buyer, [(product["id"], 3)], key="k1")).status_code == 422
    assert await _stock(client, product) == 8


async def test_idempotency_keys_are_per_caller(client: httpx.AsyncClient) -> None:
    owner, alice, bob = await account(client), await account(client), await account(client)
    product = await create_product(client, owner, stock=10)
    a = (await place_order(client, alice, [(product["id"], 1)], key="shared")).json()
    b = (await place_order(client, bob, [(product["id"], 1)], key="shared")).json()
    assert a["id"] != b["id"]
    assert b["user_id"] == bob.id
    assert await _stock(client, product) == 8


async def test_ten_concurrent_creates_with_one_key_make_one_order(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=100)

    responses = await asyncio.gather(
        *(place_order(client, buyer, [(product["id"], 3)], key="retry-storm") for _ in range(10))
    )

    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _stock(client, product) == 97
    assert (await client.get("/orders/", headers=buyer.headers)).json()["total"] == 1


async def test_failed_first_attempt_leaves_the_key_usable(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=1)
    assert (await place_order(client, buyer, [(product["id"], 2)], key="k")).status_code == 409
    await client.patch(f"/products/{product['id']}", json={"stock": 5}, headers=owner.headers)
    assert (await place_order(client, buyer, [(product["id"], 2)], key="k")).status_code == 201


async def _queries_to_list_orders(client: httpx.AsyncClient, platform: Platform, buyer: Account) -> int:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(platform.engine.sync_engine, "before_cursor_execute", count)
    try:
        page = await client.get("/orders/", headers=buyer.headers, params={"limit": 100})
    finally:
        event.remove(platform.engine.sync_engine, "before_cursor_execute", count)
    assert page.status_code == 200
    assert all(len(order["items"]) == 2 for order in page.json()["items"])
    return len(statements)


async def test_listing_orders_takes_a_constant_number_of_queries(client: httpx.AsyncClient, platform: Platform) -> None:
    owner, buyer = await account(client), await account(client)
    a = await create_product(client, owner, stock=1000)
    b = await create_product(client, owner, stock=1000)
    await place_order(client, buyer, [(a["id"], 1), (b["id"], 1)])
    with_one = await _queries_to_list_orders(client, platform, buyer)
    for _ in range(15):
        await place_order(client, buyer, [(a["id"], 1), (b["id"], 1)])
    with_sixteen = await _queries_to_list_orders(client, platform, buyer)

    assert with_one == with_sixteen
    assert with_sixteen <= 4  # caller, count, orders, items (selectinload)


async def test_orders_list_is_newest_first_and_paginated(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, stock=100)
    ids = [(await place_order(client, buyer, [(product["id"], 1)])).json()["id"] for _ in range(3)]
    page = (await client.get("/orders/", headers=buyer.headers, params={"limit": 2})).json()
    assert page["total"] == 3
    assert [o["id"] for o in page["items"]] == ids[::-1][:2]
    assert (await client.get("/orders/", headers=buyer.headers, params={"limit": 101})).status_code == 422


async def test_money_is_never_a_float(client: httpx.AsyncClient) -> None:
    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, price="0.10", stock=100)
    order = (await place_order(client, buyer, [(product["id"], 3)])).json()
    assert order["total"] == "0.30"
    assert Decimal(order["total"]) == Decimal("0.1") * 3
