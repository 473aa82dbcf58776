from __future__ import annotations

from fastapi import Response

from app.core.cache import Cached


def cached_json(cached: Cached) -> Response:
    """Sends cached JSON bytes as they are (no re-serialisation), marked with X-Cache."""
    return Response(
        content=cached.value, media_type="application/json", headers={"X-Cache": "HIT" if cached.hit else "MISS"}
    )
