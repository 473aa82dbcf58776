from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.platform.database import Base, UTCDateTime, utcnow
from app.products.money import PRICE_PRECISION, TOTAL_PRECISION, money_column

CREATED = "created"
CANCELLED = "cancelled"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ('{CREATED}', '{CANCELLED}')", name="status_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        # One order per caller and Idempotency-Key; NULL keys never collide.
        UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=CREATED)
    total: Mapped[Decimal] = mapped_column(money_column(TOTAL_PRECISION))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the normalised request, to refuse a key reused for another order.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # lazy="raise": loading items by accident (an N+1) fails in tests.
    items: Mapped[list[OrderItem]] = relationship(lazy="raise", order_by="OrderItem.id")


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        UniqueConstraint("order_id", "product_id", name="uq_order_items_order_id_product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up by order through the (order_id, product_id) unique index.
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    # As they were when the order was placed: later product edits leave orders alone.
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal] = mapped_column(money_column(PRICE_PRECISION))
    quantity: Mapped[int]


# A user's orders, newest first (GET /orders/).
Index("ix_orders_user_created", Order.user_id, Order.created_at, Order.id)
