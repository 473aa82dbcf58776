"""The expensive read: store-wide counts and revenue, cached with a TTL and
invalidated by any write to the tables it counts (app/stats/cache.py)."""

from __future__ import annotations

from app.platform.cache import Cached
from app.platform.database import utcnow
from app.platform.state import Platform
from app.stats import repository
from app.stats.cache import STORE_STATS
from app.stats.schemas import StatsOut


async def get_cached(platform: Platform) -> Cached:
    async def compute() -> bytes:
        async with platform.sessionmaker() as session:
            order_count, revenue = await repository.order_totals(session)
            stats = StatsOut(
                users=await repository.count_users(session),
                products=await repository.count_live_products(session),
                orders=order_count,
                revenue=revenue,
                generated_at=utcnow(),
            )
        return stats.model_dump_json().encode()

    return await platform.cache.get_or_compute(STORE_STATS.key, platform.settings.stats_cache_ttl_seconds, compute)
