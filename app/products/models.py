from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.database import Base, UTCDateTime, utcnow
from app.products.money import PRICE_PRECISION, money_column


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        # The database backs the API's validation, whatever writes to it.
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(money_column(PRICE_PRECISION))
    stock: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted products disappear from the API, but stay in the table so the
    # orders that contain them keep their references intact.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Listing orders by the sort keys of GET /products/, live rows only.
Index("ix_products_live_created", Product.created_at, Product.id, postgresql_where=Product.deleted_at.is_(None))
Index("ix_products_live_price", Product.price, Product.id, postgresql_where=Product.deleted_at.is_(None))
