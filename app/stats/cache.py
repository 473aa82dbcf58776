"""The stats' cached read: computed from whole tables, so any write to them invalidates it."""

from __future__ import annotations

from app.orders.models import Order
from app.platform.invalidation import TableRead
from app.products.models import Product
from app.users.models import User

STORE_STATS = TableRead("stats", (User, Product, Order))
