from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.platform.schemas import INT32_MAX, NoControlChars, PageQuery
from app.products.money import Money, Price

# Constraints first (on the stripped text), then the control-character check.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControlChars]
Description = Annotated[str, StringConstraints(max_length=5000), NoControlChars]
Stock = Annotated[int, Field(ge=0, le=INT32_MAX)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    price: Price
    description: Description | None = None
    stock: Stock = 0


class ProductUpdate(BaseModel):
    """Any subset of the fields; only `description` may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    price: Price | None = None
    description: Description | None = None
    stock: Stock | None = None

    @model_validator(mode="after")
    def _required_fields_are_not_null(self) -> ProductUpdate:
        for field in ("name", "price", "stock"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    price: Money
    stock: int
    owner_id: int
    created_at: datetime
    updated_at: datetime


class ProductSort(StrEnum):
    CREATED = "created_at"
    CREATED_DESC = "-created_at"
    PRICE = "price"
    PRICE_DESC = "-price"
    NAME = "name"


# Query filters: non-negative, at most 2 decimals, below the largest price.
PriceFilter = Annotated[Decimal, Field(ge=0, lt=10**9, max_digits=11, decimal_places=2, allow_inf_nan=False)]


SearchText = Annotated[
    str, StringConstraints(max_length=200), NoControlChars, Field(description="Name contains (case-insensitive)")
]


class ProductFilters(PageQuery):
    """The query of GET /products/, validated as one model so every rule,
    the price range included, answers 422 like any other bad input."""

    q: SearchText | None = None
    min_price: PriceFilter | None = None
    max_price: PriceFilter | None = None
    sort: ProductSort = ProductSort.CREATED_DESC

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ProductFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price must not exceed max_price")
        return self
