"""The store-wide aggregates behind GET /stats."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import CREATED, Order
from app.products.models import Product
from app.users.models import User


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


async def count_live_products(session: AsyncSession) -> int:
    live = Product.deleted_at.is_(None)
    return (await session.execute(select(func.count()).select_from(Product).where(live))).scalar_one()


async def order_totals(session: AsyncSession) -> tuple[int, Decimal]:
    """Number of orders, and revenue from the ones not cancelled."""
    revenue = func.coalesce(func.sum(Order.total).filter(Order.status == CREATED), 0)
    row = (await session.execute(select(func.count(Order.id), revenue))).one()
    return int(row[0]), Decimal(row[1])
