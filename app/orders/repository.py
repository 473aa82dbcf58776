"""Queries on orders; items are always loaded in one extra query (selectinload)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.orders.models import CANCELLED, CREATED, Order, OrderItem


async def get_owned(session: AsyncSession, order_id: int, user_id: int) -> Order | None:
    result = await session.execute(
        select(Order).where(Order.id == order_id, Order.user_id == user_id).options(selectinload(Order.items))
    )
    return result.scalar_one_or_none()


async def by_idempotency_key(session: AsyncSession, user_id: int, key: str) -> Order | None:
    result = await session.execute(
        select(Order)
        .where(Order.user_id == user_id, Order.idempotency_key == key)
        .options(selectinload(Order.items))
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


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
