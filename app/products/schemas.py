from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

from app.platform.schemas import INT32_MAX, JsonNumber, LeaveOutOnly, NoControlChars, PageQuery, trimmed_text_pattern
from app.products.money import Price, PriceFilter, PriceOut

# Constraints first (on the stripped text), then the control-character check.
# The length counts after stripping, which only a pattern can tell OpenAPI.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    NoControlChars,
    WithJsonSchema({"type": "string", "pattern": trimmed_text_pattern(200)}),
]
Description = Annotated[str, StringConstraints(max_length=5000), NoControlChars]
Stock = Annotated[int, Field(ge=0, le=INT32_MAX), JsonNumber]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    price: Price
    description: Description | None = None
    stock: Stock = 0


class ProductUpdate(BaseModel):
    """Any subset of the fields; only `description` may be set to null.

    The others default to None when absent, but an explicit null is refused,
    and their OpenAPI schema (LeaveOutOnly) does not offer null either.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Name | None, LeaveOutOnly] = None
    price: Annotated[Price | None, LeaveOutOnly] = None
    description: Description | None = None
    stock: Annotated[Stock | None, LeaveOutOnly] = None

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
    price: PriceOut
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


SearchText = Annotated[
    str, StringConstraints(max_length=200), NoControlChars, Field(description="Name contains (case-insensitive)")
]


class ProductFilters(PageQuery):
    """The query of GET /products/, validated as one model so every rule,
    the price range included, answers 422 like any other bad input."""

    # Absent means unfiltered; a query string cannot say null, so the schema offers none.
    q: Annotated[SearchText | None, LeaveOutOnly] = None
    min_price: Annotated[PriceFilter | None, LeaveOutOnly, Field(description="At most max_price")] = None
    max_price: Annotated[PriceFilter | None, LeaveOutOnly, Field(description="At least min_price")] = None
    sort: ProductSort = ProductSort.CREATED_DESC

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ProductFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price must not exceed max_price")
        return self
