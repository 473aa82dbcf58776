"""The expensive read: store-wide counts and revenue, cached with a TTL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache, Cached
from app.core.db import after_commit, utcnow
from app.core.resources import Resources
from app.orders import repository as orders
from app.products import repository as products
from app.stats.schemas import StatsOut
from app.users import repository as users

CACHE_KEY = "v1:stats:global"


def invalidate_stats(session: AsyncSession, cache: Cache) -> None:
    after_commit(session, lambda: cache.invalidate(CACHE_KEY))


async def get_cached(resources: Resources) -> Cached:
    async def compute() -> bytes:
        async with resources.sessionmaker() as session:
            order_count, revenue = await orders.totals(session)
            stats = StatsOut(
                users=await users.count(session),
                products=await products.count_live(session),
                orders=order_count,
                revenue=revenue,
                generated_at=utcnow(),
            )
        return stats.model_dump_json().encode()

    return await resources.cache.get_or_compute(CACHE_KEY, resources.settings.stats_cache_ttl_seconds, compute)
