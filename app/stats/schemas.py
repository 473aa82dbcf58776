from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.products.money import SumOut


class StatsOut(BaseModel):
    users: int
    products: int
    orders: int
    # A SUM of order totals: as large as the orders add up to.
    revenue: SumOut
    generated_at: datetime
