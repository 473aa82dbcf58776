"""Schemas shared by every domain: problem details, pages, safe strings."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import AfterValidator, BaseModel, Field

T = TypeVar("T")

# Ids are PostgreSQL `integer` (serial) columns: anything past 2**31 - 1 cannot
# name a row, and is refused as invalid input rather than reaching the database.
INT32_MAX = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[ValidationErrorItem] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Bad request"),
    401: _problem("Missing, invalid or expired credentials"),
    403: _problem("Not allowed"),
    404: _problem("Not found"),
    409: _problem("Conflict with the current state"),
    413: _problem("Request body too large"),
    422: _problem("Validation error"),
    429: _problem("Too many attempts"),
    503: _problem("Temporarily unavailable; retry after Retry-After seconds"),
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: PROBLEM_RESPONSES[code] for code in codes}


def _no_control_chars(value: str) -> str:
    # NUL and other control characters are refused: PostgreSQL cannot store NUL
    # in text, and none of them belongs in a name or description.
    if any((ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


NoControlChars = AfterValidator(_no_control_chars)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageQuery(BaseModel):
    """`limit` and `offset` of every list; a route's query model extends it."""

    limit: Annotated[int, Field(ge=1, le=100, description="Page size")] = 20
    offset: Annotated[int, Field(ge=0, le=INT32_MAX, description="Items to skip")] = 0
