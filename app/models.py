"""Imports every model so the metadata (and Alembic) sees all tables."""

from app.auth.models import RefreshToken, TokenFamily
from app.orders.models import Order, OrderItem
from app.platform.outbox import OutboxMessage
from app.products.models import Product
from app.users.models import User

__all__ = ["Order", "OrderItem", "OutboxMessage", "Product", "RefreshToken", "TokenFamily", "User"]
