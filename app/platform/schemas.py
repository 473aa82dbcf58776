"""Schemas shared by every domain: problem details, pages, safe strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

T = TypeVar("T")

# Ids are PostgreSQL `integer` (serial) columns: anything past 2**31 - 1 cannot
# name a row, and is refused as invalid input rather than reaching the database.
INT32_MAX = 2**31 - 1


def _json_number(value: Any) -> Any:
    # Pydantic's lax mode reads true as 1 and "5" as 5; a JSON body that sends
    # them broke the schema ("integer"), so they are refused. 5.0 is an
    # integer in JSON Schema and stays accepted.
    if isinstance(value, (bool, str)):
        raise ValueError("must be a JSON integer")
    return value


# For integers in a JSON body (path and query values are text, and use
# Path/Query). It goes after the bounds, which then stay in the OpenAPI schema.
JsonNumber = BeforeValidator(_json_number)
Id = Annotated[int, Field(ge=1, le=INT32_MAX), JsonNumber]
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
    # The Problem schema is registered in the components by app/platform/openapi.py.
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request body (not JSON, not a form)"),
    401: _problem("Missing, invalid or expired credentials"),
    403: _problem("Not allowed"),
    404: _problem("Not found"),
    409: _problem("Conflict with the current state"),
    413: _problem("Request body too large"),
    422: _problem("Validation error"),
    429: _problem("Too many attempts; retry after Retry-After seconds"),
    500: _problem("Unexpected error; the body carries only the request id"),
    503: _problem("Temporarily unavailable; retry after Retry-After seconds"),
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route's own rules answer (401, 403, 404, 409, 429).

    400, 413, 422, 500 and 503 need not be listed: app/platform/openapi.py adds
    them to every operation they apply to.
    """
    return {code: PROBLEM_RESPONSES[code] for code in codes}


def _class_pattern(ranges: list[tuple[int, int]]) -> str:
    """A regex character-class body, written with \\uXXXX escapes that both
    Python and ECMA-262 (the OpenAPI pattern dialect) read alike."""
    return "".join(f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges)


# Control characters, tab, line feed and carriage return excepted.
_CONTROL = [(0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x7F)]
# What pydantic's strip_whitespace removes (Unicode White_Space).
_WHITESPACE = [
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
]
_REFUSED = re.compile(f"[{_class_pattern(_CONTROL)}\\ud800-\\udfff]")
NO_CONTROL_CHARS_PATTERN = f"^[^{_class_pattern(_CONTROL)}]*$"


def _no_control_chars(value: str) -> str:
    # NUL and other control characters are refused: PostgreSQL cannot store NUL
    # in text, and none of them belongs in a name or description. Unpaired
    # surrogates (JSON can spell them) cannot be encoded as UTF-8 at all.
    if _REFUSED.search(value):
        raise ValueError("must not contain control characters")
    return value


@dataclass(frozen=True)
class _NoControlChars:
    """Refuses control characters, and says so in the OpenAPI schema (pattern)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_no_control_chars, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_CONTROL_CHARS_PATTERN)
        return json_schema


NoControlChars = _NoControlChars()


def trimmed_text_pattern(max_length: int) -> str:
    """The strings that, once stripped of surrounding whitespace, hold 1 to
    `max_length` characters and no control character.

    JSON Schema cannot say "maxLength after stripping"; this pattern can, so
    the OpenAPI schema of a stripped field is exactly what it accepts.
    """
    space = _class_pattern(_WHITESPACE)
    visible = _class_pattern([*_CONTROL, *_WHITESPACE])
    any_allowed = f"[^{_class_pattern(_CONTROL)}]"
    edge = f"[^{visible}]"
    return f"^[{space}]*{edge}(?:{any_allowed}{{0,{max_length - 2}}}{edge})?[{space}]*$"


def _offer_no_null(schema: dict[str, Any]) -> None:
    branches = [branch for branch in schema.get("anyOf", []) if branch.get("type") != "null"]
    if "anyOf" in schema and len(branches) == 1:
        del schema["anyOf"]
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    if schema.get("default", ...) is None:
        del schema["default"]


# For `X | None = None` inputs that may be left out but not sent as null (query
# values cannot be null at all): the OpenAPI schema offers no null. The field
# stays nullable for pydantic, so its errors keep plain locations.
LeaveOutOnly = Field(json_schema_extra=_offer_no_null)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageQuery(BaseModel):
    """`limit` and `offset` of every list; a route's query model extends it."""

    limit: Annotated[int, Field(ge=1, le=100, description="Page size")] = 20
    offset: Annotated[int, Field(ge=0, le=INT32_MAX, description="Items to skip")] = 0
