"""Order rules: atomic stock, idempotent creation, cancellation."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders import repository
from app.orders.exceptions import (
    IdempotencyKeyReused,
    InsufficientStock,
    OrderedProductNotFound,
    OrderNotCancellable,
    OrderNotFound,
    OrderTotalTooLarge,
)
from app.orders.models import CREATED, Order
from app.orders.schemas import OrderCreate, OrderItemOut, OrderOut
from app.platform.database import utcnow
from app.platform.schemas import PageQuery
from app.products import repository as products
from app.products.money import TOTAL_LIMIT
from app.users.models import User


def _fingerprint(data: OrderCreate) -> str:
    items = sorted((item.product_id, item.quantity) for item in data.items)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


async def _check_total(session: AsyncSession, data: OrderCreate) -> None:
    """Refuses, before anything is written, an order whose total the orders
    table cannot hold (or that names a product that does not exist)."""
    prices = await products.live_prices(session, [line.product_id for line in data.items])
    for line in sorted(data.items, key=lambda line: line.product_id):
        if line.product_id not in prices:
            raise OrderedProductNotFound(line.product_id)
    if sum((prices[line.product_id] * line.quantity for line in data.items), Decimal(0)) >= TOTAL_LIMIT:
        raise OrderTotalTooLarge()


def _replay(order: Order, fingerprint: str) -> OrderOut:
    if order.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    return OrderOut.model_validate(order)


async def place(
    session: AsyncSession, user: User, data: OrderCreate, idempotency_key: str | None
) -> tuple[OrderOut, bool]:
    """Creates the order and takes its stock in one transaction.

    Returns (order, replayed). With an Idempotency-Key, the order row (which
    holds the key) is inserted first, in a savepoint: a concurrent request with
    the same key blocks on the unique index until this one commits, then
    finds the key taken and returns this order. Nothing is taken twice.
    """
    fingerprint = _fingerprint(data)
    if idempotency_key is not None:
        existing = await repository.by_idempotency_key(session, user.id, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint), True
    await _check_total(session, data)

    now = utcnow()
    order_values = {
        "user_id": user.id,
        "status": CREATED,
        "total": Decimal(0),
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with session.begin_nested():
            order_id = await repository.insert_order(session, order_values)
    except IntegrityError:
        winner = await repository.by_idempotency_key(session, user.id, idempotency_key) if idempotency_key else None
        if winner is None:
            raise
        return _replay(winner, fingerprint), True

    items: list[OrderItemOut] = []
    # One lock order (by product id) for every order: two orders that share
    # products never wait on each other in a cycle.
    for line in sorted(data.items, key=lambda line: line.product_id):
        taken = await products.take_stock(session, line.product_id, line.quantity, now)
        if taken is None:
            # Raising rolls the whole transaction back: nothing was taken.
            if not await products.live_ids(session, [line.product_id]):
                raise OrderedProductNotFound(line.product_id)
            raise InsufficientStock(line.product_id)
        items.append(
            OrderItemOut(product_id=line.product_id, name=taken.name, quantity=line.quantity, unit_price=taken.price)
        )
    total = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    if total >= TOTAL_LIMIT:
        # A price raised since _check_total read it; raising rolls everything back.
        raise OrderTotalTooLarge()
    await repository.set_total(session, order_id, total)
    await repository.insert_items(
        session,
        [
            {
                "order_id": order_id,
                "product_id": item.product_id,
                "name": item.name,
                "unit_price": item.unit_price,
                "quantity": item.quantity,
            }
            for item in items
        ],
    )
    # The response from what was written: no ORM objects to build and flush.
    order = OrderOut(id=order_id, user_id=user.id, status=CREATED, total=total, items=items, created_at=now)
    return order, False


async def get(session: AsyncSession, user: User, order_id: int) -> Order:
    order = await repository.get_owned(session, order_id, user.id)
    if order is None:
        raise OrderNotFound()
    return order


async def page(session: AsyncSession, user: User, query: PageQuery) -> tuple[list[Order], int]:
    return await repository.page(session, user.id, query.limit, query.offset)


async def cancel(session: AsyncSession, user: User, order_id: int) -> Order:
    now = utcnow()
    if not await repository.mark_cancelled(session, order_id, user.id, now):
        await get(session, user, order_id)  # 404 when not the caller's
        raise OrderNotCancellable()
    items = await repository.items_of(session, order_id)
    for item in items:  # ordered by product id, like place()
        await products.give_back_stock(session, item.product_id, item.quantity, now)
    return await get(session, user, order_id)
