"""Queries on products; the only module that talks SQL about them.

The hot reads (one product, a page of the list) are Core statements on a
read connection (app/platform/session.py `read_connection`): rows go straight
into the response model, with no ORM identity map, unit of work or
instrumented objects, which profiling showed to be most of a read's CPU
(bench/README.md). Writes stay on the session, whose flushes invalidate the
cache.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Integer, Row, Select, Table, UnaryExpression, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.products.models import Product
from app.products.schemas import ProductFilters, ProductSort


def _live() -> ColumnElement[bool]:
    return Product.deleted_at.is_(None)


async def get_live(session: AsyncSession, product_id: int) -> Product | None:
    result = await session.execute(select(Product).where(Product.id == product_id, _live()))
    return result.scalar_one_or_none()


# Core: the table itself, so that no ORM compilation runs on the hot reads.
PRODUCTS = cast(Table, Product.__table__)
_C = PRODUCTS.c

_CORE_ORDERING: dict[ProductSort, tuple[UnaryExpression[Any], UnaryExpression[Any]]] = {
    ProductSort.CREATED: (_C.created_at.asc(), _C.id.asc()),
    ProductSort.CREATED_DESC: (_C.created_at.desc(), _C.id.desc()),
    ProductSort.PRICE: (_C.price.asc(), _C.id.asc()),
    ProductSort.PRICE_DESC: (_C.price.desc(), _C.id.desc()),
    ProductSort.NAME: (_C.name.asc(), _C.id.asc()),
}

_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)

# Built once: a statement object keeps its cache key, so executing it again
# skips the key computation as well as the compilation.
_LIVE_BY_ID = select(PRODUCTS).where(_C.id == bindparam("product_id"), _C.deleted_at.is_(None))


async def read_live(connection: AsyncConnection, product_id: int) -> Row[Any] | None:
    """The live product's row (every column), or None."""
    result = await connection.execute(_LIVE_BY_ID, {"product_id": product_id})
    return result.one_or_none()


def _filtered_rows(filters: ProductFilters) -> Select[Any]:
    statement = select(PRODUCTS).where(_C.deleted_at.is_(None))
    if filters.q:
        statement = statement.where(_C.name.icontains(filters.q, autoescape=True))
    if filters.min_price is not None:
        statement = statement.where(_C.price >= filters.min_price)
    if filters.max_price is not None:
        statement = statement.where(_C.price <= filters.max_price)
    return statement


@cache
def _unfiltered_page(sort: ProductSort) -> tuple[Select[Any], Select[Any]]:
    """The count and the page of the unfiltered list, built once per sort order."""
    base = select(PRODUCTS).where(_C.deleted_at.is_(None))
    count = select(func.count()).select_from(base.subquery())
    rows = base.order_by(*_CORE_ORDERING[sort]).limit(_LIMIT).offset(_OFFSET)
    return count, rows


async def read_page(connection: AsyncConnection, filters: ProductFilters) -> tuple[list[Row[Any]], int]:
    """A page of live products' rows and the total that match the filters."""
    if filters.q or filters.min_price is not None or filters.max_price is not None:
        base = _filtered_rows(filters)
        count = select(func.count()).select_from(base.subquery())
        rows = base.order_by(*_CORE_ORDERING[filters.sort]).limit(_LIMIT).offset(_OFFSET)
    else:
        count, rows = _unfiltered_page(filters.sort)
    total = (await connection.execute(count)).scalar_one()
    if total <= filters.offset:
        return [], total
    result = await connection.execute(rows, {"limit": filters.limit, "offset": filters.offset})
    return list(result), total


async def add(session: AsyncSession, product: Product) -> Product:
    session.add(product)
    await session.flush()
    return product


class TakenStock(NamedTuple):
    name: str
    price: Decimal


# Built once, bound at each call (see _LIVE_BY_ID). A bind parameter of an
# UPDATE may not be named after a column its SET assigns (stock, updated_at).
_TAKE_STOCK = (
    update(PRODUCTS)
    .where(_C.id == bindparam("product_id"), _C.deleted_at.is_(None), _C.stock >= bindparam("quantity"))
    .values(stock=_C.stock - bindparam("quantity"), updated_at=bindparam("now"))
    .returning(_C.name, _C.price)
)
_GIVE_BACK_STOCK = (
    update(PRODUCTS)
    .where(_C.id == bindparam("product_id"))
    .values(stock=_C.stock + bindparam("quantity"), updated_at=bindparam("now"))
)
_LIVE_PRICES = select(_C.id, _C.price).where(_C.id.in_(bindparam("ids", expanding=True)), _C.deleted_at.is_(None))
_LIVE_IDS = select(_C.id).where(_C.id.in_(bindparam("ids", expanding=True)), _C.deleted_at.is_(None))


async def take_stock(session: AsyncSession, product_id: int, quantity: int, now: datetime) -> TakenStock | None:
    """Decrements stock if enough is left, atomically; None when it is not.

    One conditional UPDATE: it takes the row lock, and a concurrent order
    waiting on that lock re-checks `stock >= quantity` against the committed
    value once it gets it, so stock can never be oversold (and the CHECK
    constraint would refuse it anyway).
    """
    # The table, not the mapped class: a Core UPDATE skips the ORM's bulk
    # update machinery (synchronising the session), which has nothing to do
    # here. The session's listeners still see it and invalidate the product
    # named by the product_id parameter.
    result = await session.execute(_TAKE_STOCK, {"product_id": product_id, "quantity": quantity, "now": now})
    row = result.one_or_none()
    return TakenStock(row.name, row.price) if row else None


async def give_back_stock(session: AsyncSession, product_id: int, quantity: int, now: datetime) -> None:
    await session.execute(_GIVE_BACK_STOCK, {"product_id": product_id, "quantity": quantity, "now": now})


async def live_prices(session: AsyncSession, product_ids: list[int]) -> dict[int, Decimal]:
    """The current price of each live product among `product_ids`."""
    result = await session.execute(_LIVE_PRICES, {"ids": product_ids})
    return {row.id: row.price for row in result}


async def live_ids(session: AsyncSession, product_ids: list[int]) -> set[int]:
    result = await session.execute(_LIVE_IDS, {"ids": product_ids})
    return set(result.scalars())
