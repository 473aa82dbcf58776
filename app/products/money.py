"""Exact money: Decimal in code, NUMERIC in the database, a string in JSON.

Products price in it and orders total in it; both import it from here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer
from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

CENT = Decimal("0.01")

# Input: a JSON number or string with at most 2 decimals. Output: "19.99".
Money = Annotated[
    Decimal,
    Field(max_digits=11, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda value: str(value.quantize(CENT)), return_type=str, when_used="json"),
]
Price = Annotated[Money, Field(gt=0, lt=10**9)]


class SQLiteCents(TypeDecorator[Decimal]):
    """Money on SQLite, as integer cents.

    SQLite has no exact decimal type (a NUMERIC value with a fraction is
    stored as a binary float, and SUM adds floats); integer cents keep the
    embedded default exact. PostgreSQL uses NUMERIC.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int((Decimal(value) * 100).to_integral_exact())

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


def money_column(precision: int) -> TypeEngine[Decimal]:
    """NUMERIC(precision, 2) on PostgreSQL, integer cents on SQLite."""
    return Numeric(precision, 2).with_variant(SQLiteCents(), "sqlite")
