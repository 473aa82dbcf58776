"""Invalidation is declared once: every write path, to every table, leaves no
cached read stale, without a single write path naming the cache.

Each case warms every cached read (GET /products/{id} and GET /stats answer
from the cache), performs one write through the API, then compares each
cached read with the truth read straight from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, select, text, update

from app.platform.invalidation import UntrackedWrite, dependents_of
from app.platform.session import commit
from app.platform.state import Platform
from app.products.models import Product
from app.products.repository import PRODUCTS
from app.products.schemas import ProductOut
from tests.support.api import Account, account, create_product, login, place_order


@dataclass
class World:
    client: httpx.AsyncClient
    platform: Platform
    owner: Account
    buyer: Account
    products: list[int]
    order_id: int


@pytest.fixture
async def world(client: httpx.AsyncClient, platform: Platform) -> World:
    owner, buyer = await account(client, "owner"), await account(client, "buyer")
    products = [int(str((await create_product(client, owner, name=f"p{i}", stock=50))["id"])) for i in range(3)]
    order = await place_order(client, buyer, [(products[0], 2), (products[1], 1)])
    assert order.status_code == 201, order.text
    return World(client, platform, owner, buyer, products, order.json()["id"])


async def _product_truth(platform: Platform, product_id: int) -> dict[str, Any] | None:
    async with platform.sessionmaker() as session:
        row = await session.scalar(select(Product).where(Product.id == product_id, Product.deleted_at.is_(None)))
        return None if row is None else ProductOut.model_validate(row).model_dump(mode="json")


async def _stats_truth(platform: Platform) -> dict[str, Any]:
    async with platform.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM products WHERE deleted_at IS NULL),"
                    " (SELECT count(*) FROM orders),"
                    " (SELECT coalesce(sum(total), 0) FROM orders WHERE status = 'created')"
                )
            )
        ).one()
    return {
        "users": row[0],
        "products": row[1],
        "orders": row[2],
        "revenue": str(Decimal(row[3]).quantize(Decimal("0.01"))),
    }


async def _warm(world: World) -> None:
    for url in (*(f"/products/{p}" for p in world.products), "/stats"):
        await world.client.get(url)
        assert (await world.client.get(url)).headers.get("x-cache") == "HIT", url


async def _assert_fresh(world: World) -> None:
    for product_id in world.products:
        response = await world.client.get(f"/products/{product_id}")
        truth = await _product_truth(world.platform, product_id)
        if truth is None:
            assert response.status_code == 404, f"deleted product {product_id} still served: {response.text}"
        else:
            assert response.json() == truth, f"product {product_id} is stale"
    stats = (await world.client.get("/stats")).json()
    stats.pop("generated_at")
    assert stats == await _stats_truth(world.platform), "stats are stale"


Write = Callable[[World], Awaitable[httpx.Response]]


async def _register(w: World) -> httpx.Response:
    return await w.client.post("/users/", json={"email": "new@example.com", "username": "newbie", "password": "x" * 12})


async def _login(w: World) -> httpx.Response:
    return await login(w.client, w.buyer.username)


async def _refresh(w: World) -> httpx.Response:
    return await w.client.post("/auth/refresh", json={"refresh_token": w.buyer.refresh_token})


async def _logout(w: World) -> httpx.Response:
    return await w.client.post("/auth/logout", json={"refresh_token": w.buyer.refresh_token})


async def _create_product(w: World) -> httpx.Response:
    return await w.client.post("/products/", json={"name": "new", "price": "3.00"}, headers=w.owner.headers)


async def _patch_price(w: World) -> httpx.Response:
    return await w.client.patch(f"/products/{w.products[0]}", json={"price": "7.77"}, headers=w.owner.headers)


async def _patch_stock(w: World) -> httpx.Response:
    return await w.client.patch(f"/products/{w.products[2]}", json={"stock": 3}, headers=w.owner.headers)


async def _delete_product(w: World) -> httpx.Response:
    return await w.client.delete(f"/products/{w.products[2]}", headers=w.owner.headers)


async def _place_order(w: World) -> httpx.Response:
    items = [{"product_id": w.products[1], "quantity": 4}, {"product_id": w.products[2], "quantity": 1}]
    return await w.client.post("/orders/", json={"items": items}, headers=w.buyer.headers)


async def _cancel_order(w: World) -> httpx.Response:
    return await w.client.post(f"/orders/{w.order_id}/cancel", headers=w.buyer.headers)


WRITE_PATHS: dict[str, tuple[Write, str]] = {
    # name: (the write, the tables it writes)
    "register": (_register, "users, email_outbox"),
    "login": (_login, "token_families, refresh_tokens"),
    "refresh": (_refresh, "refresh_tokens"),
    "logout": (_logout, "token_families"),
    "create product": (_create_product, "products"),
    "patch price": (_patch_price, "products"),
    "patch stock": (_patch_stock, "products"),
    "delete product": (_delete_product, "products"),
    "place order": (_place_order, "orders, order_items, products"),
    "cancel order": (_cancel_order, "orders, products"),
}


@pytest.mark.parametrize("name", WRITE_PATHS)
async def test_no_write_path_leaves_a_cached_read_stale(world: World, name: str) -> None:
    write, _tables = WRITE_PATHS[name]
    await _warm(world)
    response = await write(world)
    assert response.status_code < 300, response.text
    await _assert_fresh(world)


async def test_every_table_is_written_by_some_case(platform: Platform) -> None:
    """The cases above cover every table the app has."""
    from app.platform.database import Base

    written = {table.strip() for _, tables in WRITE_PATHS.values() for table in tables.split(",")}
    assert written == set(Base.metadata.tables)


async def test_a_new_write_through_any_session_invalidates_too(world: World) -> None:
    """A write no route does yet: the declaration, not the call site, invalidates."""
    await _warm(world)
    async with world.platform.sessionmaker() as session:
        await session.execute(update(Product).where(Product.id.in_(world.products[:2])).values(stock=Product.stock + 1))
        await commit(session, world.platform)
    await _assert_fresh(world)


async def test_a_statement_built_once_names_its_rows_in_its_parameters(world: World) -> None:
    """A prebuilt statement's primary keys come with each execution: one
    parameter set per row (executemany), or an expanding IN list."""
    p0, p1, p2 = world.products
    by_id = update(PRODUCTS).where(PRODUCTS.c.id == bindparam("pid")).values(stock=PRODUCTS.c.stock + 1)
    in_list = (
        update(PRODUCTS).where(PRODUCTS.c.id.in_(bindparam("pids", expanding=True))).values(stock=PRODUCTS.c.stock + 1)
    )
    for statement, parameters in ((by_id, [{"pid": p1}, {"pid": p2}]), (in_list, {"pids": [p0, p2]})):
        await _warm(world)
        async with world.platform.sessionmaker() as session:
            await session.execute(statement, parameters)
            await commit(session, world.platform)
        await _assert_fresh(world)


async def test_a_statement_that_hides_which_rows_it_changes_is_refused(world: World) -> None:
    """Rather than leave product entries stale, an UPDATE of products that does
    not name their primary keys fails loudly, and changes nothing."""
    assert dependents_of(Product.__table__)  # type: ignore[arg-type]
    by_id = update(PRODUCTS).where(PRODUCTS.c.id == bindparam("pid")).values(stock=0)
    async with world.platform.sessionmaker() as session:
        with pytest.raises(UntrackedWrite):
            await session.execute(update(Product).where(Product.name == "p0").values(stock=0))
        with pytest.raises(UntrackedWrite):  # the second parameter set names no row
            await session.execute(by_id, [{"pid": world.products[0]}, {}])
    assert (await _product_truth(world.platform, world.products[0]) or {})["stock"] == 48
