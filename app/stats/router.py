from __future__ import annotations

from fastapi import APIRouter, Response

from app.platform.responses import CACHE_HEADER, cached_json
from app.platform.state import PlatformDep
from app.stats import service
from app.stats.schemas import StatsOut

router = APIRouter(tags=["stats"])


@router.get("/stats", response_model=StatsOut, responses={200: {"headers": CACHE_HEADER}})
async def read_stats(platform: PlatformDep) -> Response:
    """Store-wide counts and revenue (orders not cancelled). Expensive, so
    cached for STATS_CACHE_TTL_SECONDS and dropped on every write; X-Cache
    says which. Without Redis it is cached in-process."""
    return cached_json(await service.get_cached(platform))
