"""Queries on products; the only module that talks SQL about them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.products.models import Product
from app.products.schemas import ProductFilters, ProductSort

_ORDERING: dict[ProductSort, tuple[UnaryExpression[Any], UnaryExpression[int]]] = {
    ProductSort.CREATED: (Product.created_at.asc(), Product.id.asc()),
    ProductSort.CREATED_DESC: (Product.created_at.desc(), Product.id.desc()),
    ProductSort.PRICE: (Product.price.asc(), Product.id.asc()),
    ProductSort.PRICE_DESC: (Product.price.desc(), Product.id.desc()),
    ProductSort.NAME: (Product.name.asc(), Product.id.asc()),
}


def _live() -> ColumnElement[bool]:
    return Product.deleted_at.is_(None)


async def get_live(session: AsyncSession, product_id: int) -> Product | None:
    result = await session.execute(select(Product).where(Product.id == product_id, _live()))
    return result.scalar_one_or_none()


async def add(session: AsyncSession, product: Product) -> Product:
    session.add(product)
    await session.flush()
    return product


def _filtered(statement: Select[Product], filters: ProductFilters) -> Select[Product]:
    statement = statement.where(_live())
    if filters.q:
        # autoescape: a "%" or "_" in the query matches itself, not anything.
        statement = statement.where(Product.name.icontains(filters.q, autoescape=True))
    if filters.min_price is not None:
        statement = statement.where(Product.price >= filters.min_price)
    if filters.max_price is not None:
        statement = statement.where(Product.price <= filters.max_price)
    return statement


async def page(session: AsyncSession, filters: ProductFilters) -> tuple[list[Product], int]:
    base = _filtered(select(Product), filters)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    if total <= filters.offset:
        return [], total
    rows = await session.execute(base.order_by(*_ORDERING[filters.sort]).limit(filters.limit).offset(filters.offset))
    return list(rows.scalars()), total


class TakenStock(NamedTuple):
    name: str
    price: Decimal


async def take_stock(session: AsyncSession, product_id: int, quantity: int, now: datetime) -> TakenStock | None:
    """Decrements stock if enough is left, atomically; None when it is not.

    One conditional UPDATE: it takes the row lock, and a concurrent order
    waiting on that lock re-checks `stock >= quantity` against the committed
    value once it gets it, so stock can never be oversold (and the CHECK
    constraint would refuse it anyway).
    """
    result = await session.execute(
        update(Product)
        .where(Product.id == product_id, _live(), Product.stock >= quantity)
        .values(stock=Product.stock - quantity, updated_at=now)
        .returning(Product.name, Product.price)
    )
    row = result.one_or_none()
    return TakenStock(row.name, row.price) if row else None


async def give_back_stock(session: AsyncSession, product_id: int, quantity: int, now: datetime) -> None:
    await session.execute(
        update(Product).where(Product.id == product_id).values(stock=Product.stock + quantity, updated_at=now)
    )


async def live_prices(session: AsyncSession, product_ids: list[int]) -> dict[int, Decimal]:
    """The current price of each live product among `product_ids`."""
    result = await session.execute(select(Product.id, Product.price).where(Product.id.in_(product_ids), _live()))
    return {row.id: row.price for row in result}


async def live_ids(session: AsyncSession, product_ids: list[int]) -> set[int]:
    result = await session.execute(select(Product.id).where(Product.id.in_(product_ids), _live()))
    return set(result.scalars())
