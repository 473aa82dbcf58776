from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.platform.schemas import Id, JsonNumber
from app.products.money import PriceOut, TotalOut


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=1000), JsonNumber]


class OrderCreate(BaseModel):
    """Each product at most once. The order total must stay below 10^12 (422 otherwise,
    problem type urn:storefront:problem:order-total-too-large)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _distinct_products(self) -> OrderCreate:
        ids = [item.product_id for item in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("each product may appear only once")
        return self


class OrderItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    name: str
    quantity: int
    unit_price: PriceOut


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    status: Literal["created", "cancelled"]
    total: TotalOut
    items: list[OrderItemOut]
    created_at: datetime
