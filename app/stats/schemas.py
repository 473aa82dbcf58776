from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.products.money import Money


class StatsOut(BaseModel):
    users: int
    products: int
    orders: int
    revenue: Money
    generated_at: datetime
