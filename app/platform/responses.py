"""Responses for cached reads: the stored JSON bytes as they are, marked with X-Cache."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from app.platform.cache import Cached

# OpenAPI description of the header, for the routes that send it.
CACHE_HEADER: dict[str, Any] = {
    "X-Cache": {"description": "HIT when served from the cache, MISS otherwise", "schema": {"type": "string"}}
}


def cached_json(cached: Cached) -> Response:
    """Sends cached JSON bytes as they are (no re-serialisation), marked with X-Cache."""
    return Response(
        content=cached.value, media_type="application/json", headers={"X-Cache": "HIT" if cached.hit else "MISS"}
    )


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    """A validated response model as JSON, serialised once by pydantic.

    Returned from a route that declares the same `response_model` (for
    OpenAPI): FastAPI would otherwise dump the model to a dict, validate that
    again against the response model and serialise the result, three passes
    over a value that is already checked.
    """
    return Response(
        content=model.__pydantic_serializer__.to_json(model), media_type="application/json", status_code=status_code
    )
