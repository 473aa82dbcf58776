"""GET /stats: counts and revenue, cached, dropped on writes."""

from __future__ import annotations

import httpx

from tests.support.api import account, create_product, place_order


async def test_stats_count_and_sum_and_cache(client: httpx.AsyncClient) -> None:
    empty = await client.get("/stats")
    assert empty.status_code == 200
    assert empty.headers["x-cache"] == "MISS"
    body = empty.json()
    assert set(body) == {"users", "products", "orders", "revenue", "generated_at"}
    assert (body["users"], body["products"], body["orders"], body["revenue"]) == (0, 0, 0, "0.00")
    assert (await client.get("/stats")).headers["x-cache"] == "HIT"

    owner, buyer = await account(client), await account(client)
    product = await create_product(client, owner, price="12.50", stock=10)
    order = (await place_order(client, buyer, [(product["id"], 2)])).json()
    other = (await place_order(client, buyer, [(product["id"], 1)])).json()

    after = await client.get("/stats")
    assert after.headers["x-cache"] == "MISS"  # the writes dropped it
    assert (after.json()["users"], after.json()["products"], after.json()["orders"]) == (2, 1, 2)
    assert after.json()["revenue"] == "37.50"

    await client.post(f"/orders/{other['id']}/cancel", headers=buyer.headers)
    assert (await client.get("/stats")).json()["revenue"] == "25.00"  # cancelled orders earn nothing
    assert order["total"] == "25.00"

    await client.delete(f"/products/{product['id']}", headers=owner.headers)
    assert (await client.get("/stats")).json()["products"] == 0
