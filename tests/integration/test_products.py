"""Products: create, read (cached), list, search, filters, sort, owner-only writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.platform.state import Platform
from tests.support.api import account, create_product, place_order

PRODUCT_FIELDS = {"id", "name", "description", "price", "stock", "owner_id", "created_at", "updated_at"}


async def test_create_returns_201_location_and_exact_money(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    response = await client.post(
        "/products/",
        json={"name": "  Lamp  ", "price": 19.99, "description": "bright", "stock": 3},
        headers=owner.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == PRODUCT_FIELDS
    assert body["name"] == "Lamp"
    assert body["price"] == "19.99"
    assert body["stock"] == 3
    assert body["owner_id"] == owner.id
    assert response.headers["location"] == f"/products/{body['id']}"


@pytest.mark.parametrize(
    ("sent", "shown"), [("5", "5.00"), ("0.1", "0.10"), (7, "7.00"), ("999999999.99", "999999999.99")]
)
async def test_price_is_exact_and_rendered_as_a_string(client: httpx.AsyncClient, sent: Any, shown: str) -> None:
    owner = await account(client)
    product = await create_product(client, owner, price=sent)
    assert product["price"] == shown
    assert (await client.get(f"/products/{product['id']}")).json()["price"] == shown


async def test_create_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post("/products/", json={"name": "x", "price": "1.00"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


BAD_PRODUCTS: dict[str, dict[str, Any]] = {
    "zero price": {"name": "x", "price": "0"},
    "negative price": {"name": "x", "price": "-1.00"},
    "three decimals": {"name": "x", "price": "1.999"},
    "price 10^9": {"name": "x", "price": "1000000000"},
    "price NaN": {"name": "x", "price": "NaN"},
    "price Infinity": {"name": "x", "price": "Infinity"},
    "price not a number": {"name": "x", "price": "cheap"},
    "price missing": {"name": "x"},
    "empty name": {"name": "", "price": "1.00"},
    "blank name": {"name": "   ", "price": "1.00"},
    "long name": {"name": "n" * 201, "price": "1.00"},
    "NUL in name": {"name": "a\x00b", "price": "1.00"},
    "negative stock": {"name": "x", "price": "1.00", "stock": -1},
    "huge stock": {"name": "x", "price": "1.00", "stock": 2**40},
    "fractional stock": {"name": "x", "price": "1.00", "stock": 1.5},
    "owner_id assignment": {"name": "x", "price": "1.00", "owner_id": 1},
    "unknown field": {"name": "x", "price": "1.00", "discount": 5},
}


@pytest.mark.parametrize("payload", BAD_PRODUCTS.values(), ids=BAD_PRODUCTS.keys())
async def test_invalid_product_is_422(client: httpx.AsyncClient, platform: Platform, payload: dict[str, Any]) -> None:
    owner = await account(client)
    response = await client.post("/products/", json=payload, headers=owner.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    async with platform.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM products"))).scalar_one() == 0


@pytest.mark.parametrize(("price", "stock"), [(0, 1), (1, -1)])
async def test_database_checks_back_the_validation(
    client: httpx.AsyncClient, platform: Platform, price: int, stock: int
) -> None:
    owner = await account(client)
    insert = text(
        "INSERT INTO products (name, price, stock, owner_id, created_at, updated_at)"
        " VALUES ('x', :price, :stock, :owner, now(), now())"
    )
    with pytest.raises(IntegrityError):
        async with platform.engine.begin() as connection:
            await connection.execute(insert, {"price": price, "stock": stock, "owner": owner.id})


async def test_get_is_served_from_cache_when_warm(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    product = await create_product(client, owner)
    first = await client.get(f"/products/{product['id']}")
    second = await client.get(f"/products/{product['id']}")
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert first.json() == second.json() == {**product}


@pytest.mark.parametrize("product_id", ["424242", "0", "abc", str(2**40)])
async def test_unknown_product_is_404_or_422(client: httpx.AsyncClient, product_id: str) -> None:
    response = await client.get(f"/products/{product_id}")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def _seed(client: httpx.AsyncClient) -> list[dict[str, object]]:
    owner = await account(client)
    catalogue = [
        ("Red Chair", "25.00"),
        ("blue chair", "15.50"),
        ("Table", "120.00"),
        ("100% Cotton", "9.99"),
        ("Lamp_1", "40.00"),
    ]
    return [await create_product(client, owner, name=name, price=price) for name, price in catalogue]


async def test_list_paginates_with_total(client: httpx.AsyncClient) -> None:
    await _seed(client)
    page = (await client.get("/products/", params={"limit": 2, "offset": 1, "sort": "created_at"})).json()
    assert page["total"] == 5
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [p["name"] for p in page["items"]] == ["blue chair", "Table"]
    beyond = (await client.get("/products/", params={"offset": 10})).json()
    assert beyond == {"items": [], "total": 5, "limit": 20, "offset": 10}


async def test_search_is_case_insensitive_and_literal(client: httpx.AsyncClient) -> None:
    await _seed(client)

    async def names(q: str) -> set[str]:
        return {p["name"] for p in (await client.get("/products/", params={"q": q})).json()["items"]}

    assert await names("CHAIR") == {"Red Chair", "blue chair"}
    assert await names("%") == {"100% Cotton"}  # a wildcard character matches itself only
    assert await names("_") == {"Lamp_1"}
    assert await names("nothing-like-this") == set()


async def test_price_filters_and_sorts(client: httpx.AsyncClient) -> None:
    await _seed(client)

    async def names(**params: Any) -> list[str]:
        return [p["name"] for p in (await client.get("/products/", params=params)).json()["items"]]

    assert await names(min_price="15.50", max_price="40", sort="price") == ["blue chair", "Red Chair", "Lamp_1"]
    assert (await names(sort="-price"))[0] == "Table"
    assert await names(sort="name") == sorted(await names(sort="name"))
    assert await names(sort="-created_at") == list(reversed(await names(sort="created_at")))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 10**20},
        {"limit": "ten"},
        {"sort": "owner_id"},
        {"min_price": "-1"},
        {"min_price": "abc"},
        {"min_price": "NaN"},
        {"min_price": "10", "max_price": "5"},
        {"q": "x" * 201},
    ],
)
async def test_bad_list_parameters_are_422(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/products/", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_owner_can_patch_and_reads_see_it_at_once(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    product = await create_product(client, owner, description="old")
    url = f"/products/{product['id']}"
    await client.get(url)  # warm the cache

    patched = await client.patch(url, json={"price": "21.50", "description": None}, headers=owner.headers)
    assert patched.status_code == 200
    assert patched.json()["price"] == "21.50"
    assert patched.json()["description"] is None
    assert patched.json()["name"] == product["name"]

    fresh = await client.get(url)
    assert fresh.json()["price"] == "21.50"
    assert fresh.json()["updated_at"] > product["updated_at"]


async def test_only_the_owner_may_patch_or_delete(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    other = await account(client)
    product = await create_product(client, owner)
    url = f"/products/{product['id']}"
    assert (await client.patch(url, json={"price": "1.00"}, headers=other.headers)).status_code == 403
    assert (await client.delete(url, headers=other.headers)).status_code == 403
    assert (await client.patch(url, json={"price": "1.00"})).status_code == 401
    assert (await client.get(url)).json()["price"] == "19.99"


async def test_patch_unknown_product_is_404(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    assert (await client.patch("/products/999999", json={"price": "1.00"}, headers=owner.headers)).status_code == 404


@pytest.mark.parametrize(
    "payload",
    [{"name": None}, {"price": None}, {"stock": None}, {"price": "0"}, {"stock": -5}, {"owner_id": 2}, {"name": ""}],
)
async def test_invalid_patch_is_422_and_changes_nothing(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    owner = await account(client)
    product = await create_product(client, owner)
    url = f"/products/{product['id']}"
    assert (await client.patch(url, json=payload, headers=owner.headers)).status_code == 422
    assert (await client.get(url)).json() == product


async def test_delete_hides_the_product_but_keeps_orders(client: httpx.AsyncClient) -> None:
    owner = await account(client)
    buyer = await account(client)
    product = await create_product(client, owner, name="Vase", price="30.00")
    url = f"/products/{product['id']}"
    await client.get(url)
    order = (await place_order(client, buyer, [(product["id"], 2)])).json()

    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert product["id"] not in [p["id"] for p in (await client.get("/products/")).json()["items"]]
    assert (await client.delete(url, headers=owner.headers)).status_code == 404
    kept = (await client.get(f"/orders/{order['id']}", headers=buyer.headers)).json()
    assert kept["items"] == [{"product_id": product["id"], "name": "Vase", "quantity": 2, "unit_price": "30.00"}]
    assert Decimal(kept["total"]) == Decimal("60.00")
