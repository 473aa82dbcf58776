"""Exact money: Decimal in code, NUMERIC in the database, a string in JSON.

Products price in it and orders total in it; both import it from here.

Inputs and outputs are sized apart. An input (a price, a price filter) is
bounded by the business rule (> 0, < 10^9, at most 2 decimals), and its
OpenAPI schema says exactly what is accepted. An output is bounded only by
the column it is read from: anything the database holds can be answered. A
sum (revenue) has no bound at all.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

CENT = Decimal("0.01")
SCALE = 2

# NUMERIC(precision, 2) columns: products.price and order_items.unit_price hold
# any price; orders.total the sum of up to 50 lines of up to 1000 units.
PRICE_PRECISION = 12
TOTAL_PRECISION = 14
# A price is below 10^9, as the contract says.
PRICE_LIMIT = Decimal(10) ** 9
# The largest total orders.total holds is 10^12 - 0.01.
TOTAL_LIMIT = Decimal(10) ** (TOTAL_PRECISION - SCALE)


def _as_text(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _amount_pattern(*, zero_allowed: bool, integer_digits: int) -> str:
    """A plain decimal numeral below 10^integer_digits with at most 2 decimals.

    No sign, exponent, blanks, underscores or leading zeros: the string form is
    as strict as its OpenAPI pattern says.
    """
    digits = f"[1-9][0-9]{{0,{integer_digits - 1}}}"
    if zero_allowed:
        return rf"^(0|{digits})(\.[0-9]{{1,2}})?$"
    return rf"^({digits}(\.[0-9]{{1,2}})?|0\.(0[1-9]|[1-9][0-9]?))$"


def _strict_string(pattern: str) -> BeforeValidator:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError("must be a decimal number such as 19.99 (at most 2 decimals)")
        return value

    return BeforeValidator(check)


def _input_schema(pattern: str, bounds: dict[str, int]) -> WithJsonSchema:
    # Pydantic documents Decimal as "any string"; say what is really accepted.
    number = {"type": "number", "multipleOf": 0.01, **bounds}
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}]})


_PRICE_PATTERN = _amount_pattern(zero_allowed=False, integer_digits=9)
_FILTER_PATTERN = _amount_pattern(zero_allowed=True, integer_digits=9)

# Input: a JSON number or string with at most 2 decimals.
Price = Annotated[
    Decimal,
    _strict_string(_PRICE_PATTERN),
    Field(gt=0, lt=PRICE_LIMIT, max_digits=SCALE + 9, decimal_places=SCALE, allow_inf_nan=False),
    _input_schema(_PRICE_PATTERN, {"exclusiveMinimum": 0, "exclusiveMaximum": 10**9}),
]
# A bound of a price range (GET /products/?min_price=...): zero allowed.
PriceFilter = Annotated[
    Decimal,
    _strict_string(_FILTER_PATTERN),
    Field(ge=0, lt=PRICE_LIMIT, max_digits=SCALE + 9, decimal_places=SCALE, allow_inf_nan=False),
    _input_schema(_FILTER_PATTERN, {"minimum": 0, "exclusiveMaximum": 10**9}),
]


# Output: sent as a string such as "19.99".
_AS_TEXT = PlainSerializer(_as_text, return_type=str, when_used="json")
_TEXT_SCHEMA = WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"}, mode="serialization")

# Sized to what the database holds: NUMERIC(12, 2) for prices, NUMERIC(14, 2)
# for order totals, and no bound for a SUM of totals (PostgreSQL sums NUMERIC
# without one).
PriceOut = Annotated[Decimal, Field(max_digits=PRICE_PRECISION, decimal_places=SCALE), _AS_TEXT, _TEXT_SCHEMA]
TotalOut = Annotated[Decimal, Field(max_digits=TOTAL_PRECISION, decimal_places=SCALE), _AS_TEXT, _TEXT_SCHEMA]
SumOut = Annotated[Decimal, Field(decimal_places=SCALE), _AS_TEXT, _TEXT_SCHEMA]


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
        return None if value is None else (Decimal(value) / 100).quantize(CENT)


def money_column(precision: int) -> TypeEngine[Decimal]:
    """NUMERIC(precision, 2) on PostgreSQL, integer cents on SQLite."""
    return Numeric(precision, SCALE).with_variant(SQLiteCents(), "sqlite")
