"""The products' cached read: one product's JSON, invalidated whenever its row changes."""

from __future__ import annotations

from app.platform.invalidation import RowRead
from app.products.models import Product

PRODUCT_BY_ID = RowRead("product", Product)
