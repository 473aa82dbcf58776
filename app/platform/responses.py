"""Responses for cached reads: the stored JSON bytes as they are, marked with X-Cache."""

from __future__ import annotations

from typing import Any

from fastapi import Response

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
