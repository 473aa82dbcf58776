"""Queries on orders; items are always loaded in one extra query (selectinload).

Placing an order writes with Core statements through the session (the same
transaction, and its listeners still see them and invalidate the cache):
profiling showed the ORM unit of work, not the database, to be most of an
order's CPU (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.orders.models import CANCELLED, CREATED, Order, OrderItem


async def get_owned(session: AsyncSession, order_id: int, user_id: int) -> Order | None:
    result = await session.execute(
        select(Order).where(Order.id == order_id, Order.user_id == user_id).options(selectinload(Order.items))
    )
    return result.scalar_one_or_none()


ORDERS = cast(Table, Order.__table__)
ORDER_ITEMS = cast(Table, OrderItem.__table__)

# Built once: a statement object keeps its cache key between executions.
_INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)
_SET_TOTAL = update(ORDERS).where(ORDERS.c.id == bindparam("order_id")).values(total=bindparam("total"))
# Executed with one parameter set per item; inline: no RETURNING of the ids
# even when an order has a single item.
_INSERT_ITEMS = insert(ORDER_ITEMS).inline()
# user_id's type comes from users.id, which may not be resolved yet at import:
# the bind parameter names it, or it would stay untyped.
_ORDER_ID_BY_KEY = select(ORDERS.c.id).where(
    ORDERS.c.user_id == bindparam("user_id", type_=Integer), ORDERS.c.idempotency_key == bindparam("key")
)


async def by_idempotency_key(session: AsyncSession, user_id: int, key: str) -> Order | None:
    """The caller's order with this key, with its items.

    Almost every order carries a new key: the lookup is a plain Core SELECT,
    and only a replay pays for the ORM load.
    """
    found = await session.execute(_ORDER_ID_BY_KEY, {"user_id": user_id, "key": key})
    order_id = found.scalar_one_or_none()
    if order_id is None:
        return None
    result = await session.execute(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.items))
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def insert_order(session: AsyncSession, values: dict[str, Any]) -> int:
    """Inserts the order row; its id."""
    result = await session.execute(_INSERT_ORDER, values)
    order_id: int = result.scalar_one()
    return order_id


async def set_total(session: AsyncSession, order_id: int, total: Decimal) -> None:
    await session.execute(_SET_TOTAL, {"order_id": order_id, "total": total})


async def insert_items(session: AsyncSession, items: Sequence[dict[str, Any]]) -> None:
    """All of an order's items: one executemany, which asyncpg sends in one round trip."""
    await session.execute(_INSERT_ITEMS, list(items))


async def page(session: AsyncSession, user_id: int, limit: int, offset: int) -> tuple[list[Order], int]:
    """A page of the user's orders with their items: three queries, whatever the page holds."""
    total = (
        await session.execute(select(func.count()).select_from(Order).where(Order.user_id == user_id))
    ).scalar_one()
    if total <= offset:
        return [], total
    result = await session.execute(
        select(Order)
        .where(Order.user_id == user_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
        .offset(offset)
        .options(selectinload(Order.items))
    )
    return list(result.scalars()), total


async def mark_cancelled(session: AsyncSession, order_id: int, user_id: int, now: datetime) -> bool:
    """created -> cancelled, atomically: of two concurrent cancels, one wins."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.user_id == user_id, Order.status == CREATED)
        .values(status=CANCELLED, updated_at=now)
        .returning(Order.id)
    )
    return result.scalar_one_or_none() is not None


async def items_of(session: AsyncSession, order_id: int) -> list[OrderItem]:
    result = await session.execute(
        select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.product_id)
    )
    return list(result.scalars())
