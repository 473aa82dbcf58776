from __future__ import annotations

from fastapi import APIRouter, Response

from app.core.resources import ResourcesDep
from app.core.responses import cached_json
from app.core.schemas import problems
from app.stats import service
from app.stats.schemas import StatsOut

router = APIRouter(tags=["stats"])


@router.get("/stats", response_model=StatsOut, responses=problems(503))
async def read_stats(resources: ResourcesDep) -> Response:
    """Store-wide counts and revenue (orders not cancelled). Expensive, so
    cached for STATS_CACHE_TTL_SECONDS and dropped on every write; X-Cache
    says which. Without Redis it is cached in-process."""
    return cached_json(await service.get_cached(resources))
