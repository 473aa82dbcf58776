"""Finding 1: a large order broke revenue for good.

Order totals of 10^9 and more answered 500 (the output type allowed 11
digits while orders.total is NUMERIC(14,2)), and once revenue passed 10^9
every GET /stats was 500. Now outputs are sized to their columns, revenue to
a sum, and a total the column cannot hold is a 422 before any stock is taken.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from app.platform.state import Platform
from app.products import repository as products
from tests.support.api import Account, account, create_product, place_order
from tests.support.surface import table_digests

TOP_PRICE = "999999999.99"  # the largest price there is


async def _stock_of(platform: Platform, product_id: object) -> int:
    async with platform.engine.connect() as connection:
        stock = await connection.execute(text("SELECT stock FROM products WHERE id = :id"), {"id": product_id})
        return int(stock.scalar_one())


async def _expensive(client: httpx.AsyncClient, owner: Account, stock: int = 5000) -> int:
    return int(str((await create_product(client, owner, name="Yacht", price=TOP_PRICE, stock=stock))["id"]))


async def test_an_order_total_past_a_billion_is_answered(client: httpx.AsyncClient) -> None:
    buyer = await account(client)
    product = await _expensive(client, buyer)
    response = await place_order(client, buyer, [(product, 2)])
    assert response.status_code == 201, response.text
    assert response.json()["total"] == "1999999999.98"
    order = await client.get(response.headers["location"], headers=buyer.headers)
    assert order.status_code == 200
    assert order.json()["total"] == "1999999999.98"
    listed = await client.get("/orders/", headers=buyer.headers)
    assert listed.json()["items"][0]["total"] == "1999999999.98"


async def test_revenue_past_a_billion_keeps_stats_answering(client: httpx.AsyncClient) -> None:
    buyer = await account(client)
    product = await _expensive(client, buyer)
    for _ in range(2):  # two orders just under 10^9 each
        assert (await place_order(client, buyer, [(product, 1)])).status_code == 201
    stats = await client.get("/stats")
    assert stats.status_code == 200, stats.text
    assert stats.json()["revenue"] == "1999999999.98"


async def test_the_largest_total_the_column_holds_is_accepted(client: httpx.AsyncClient) -> None:
    buyer = await account(client)
    product = await _expensive(client, buyer)
    response = await place_order(client, buyer, [(product, 1000)])  # 999,999,999,990.00
    assert response.status_code == 201, response.text
    assert response.json()["total"] == "999999999990.00"
    stats = await client.get("/stats")
    assert stats.json()["revenue"] == "999999999990.00"


async def test_revenue_is_a_sum_without_a_bound(client: httpx.AsyncClient) -> None:
    """Two orders near the column's limit: their sum has 15 digits, and stats still answer."""
    buyer = await account(client)
    product = await _expensive(client, buyer)
    for _ in range(2):
        assert (await place_order(client, buyer, [(product, 1000)])).status_code == 201
    stats = await client.get("/stats")
    assert stats.status_code == 200, stats.text
    assert stats.json()["revenue"] == "1999999999980.00"


async def test_a_total_the_column_cannot_hold_is_422_before_any_stock_is_taken(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    buyer = await account(client)
    first = await _expensive(client, buyer)
    second = await _expensive(client, buyer)
    before = await table_digests(platform)
    # 2 x 1000 x 999,999,999.99 is about 2 x 10^12: past NUMERIC(14, 2).
    response = await place_order(client, buyer, [(first, 1000), (second, 1000)], key="too-large")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:storefront:problem:order-total-too-large"
    assert await table_digests(platform) == before
    assert await _stock_of(platform, first) == await _stock_of(platform, second) == 5000


async def test_a_price_raised_meanwhile_is_caught_after_the_stock_update(
    client: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prices checked first may be raised before the stock is taken; the
    total is checked again, and the whole order rolls back."""
    buyer = await account(client)
    first = await _expensive(client, buyer)
    second = await _expensive(client, buyer)

    async def cheap_prices(session: object, product_ids: list[int]) -> dict[int, Decimal]:
        return dict.fromkeys(product_ids, Decimal("0.01"))

    monkeypatch.setattr(products, "live_prices", cheap_prices)
    before = await table_digests(platform)
    response = await place_order(client, buyer, [(first, 1000), (second, 1000)])
    assert response.status_code == 422, response.text
    # Refused by the rule, not by the database overflowing on the total.
    assert response.json()["type"] == "urn:storefront:problem:order-total-too-large"
    assert await table_digests(platform) == before
