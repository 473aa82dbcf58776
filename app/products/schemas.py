from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.money import Money, Price
from app.core.schemas import NoControlChars

# Constraints first (on the stripped text), then the control-character check.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControlChars]
Description = Annotated[str, StringConstraints(max_length=5000), NoControlChars]
Stock = Annotated[int, Field(ge=0, le=2**31 - 1)]


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


class ProductFilters(BaseModel):
    q: Annotated[str, StringConstraints(max_length=200), NoControlChars] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    sort: ProductSort = ProductSort.CREATED_DESC
