"""Exact money: Decimal in code, NUMERIC in the database, a string in JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

CENT = Decimal("0.01")

# Input: a JSON number or string with at most 2 decimals. Output: "19.99".
Money = Annotated[
    Decimal,
    Field(max_digits=11, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda value: str(value.quantize(CENT)), return_type=str, when_used="json"),
]
Price = Annotated[Money, Field(gt=0, lt=10**9)]
