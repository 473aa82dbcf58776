"""Product rules: ownership, soft deletion, cached reads."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache, Cached
from app.core.db import after_commit, utcnow
from app.core.errors import Forbidden, NotFound
from app.core.resources import Resources
from app.products import repository
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductFilters, ProductOut, ProductUpdate
from app.stats.service import invalidate_stats
from app.users.models import User

NOT_FOUND = "Product not found"


def cache_key(product_id: int) -> str:
    # The version prefix changes when the cached representation does, so a
    # rolling deploy never reads the other version's bytes.
    return f"v1:product:{product_id}"


def invalidate_products(session: AsyncSession, cache: Cache, product_ids: list[int]) -> None:
    keys = [cache_key(product_id) for product_id in product_ids]
    after_commit(session, lambda: cache.invalidate(*keys))


async def create(session: AsyncSession, cache: Cache, owner: User, data: ProductCreate) -> Product:
    now = utcnow()
    product = Product(**data.model_dump(), owner_id=owner.id, created_at=now, updated_at=now)
    await repository.add(session, product)
    invalidate_stats(session, cache)
    return product


async def get_cached(resources: Resources, product_id: int) -> Cached:
    """The product's JSON, from the cache when warm. A miss reads the row with
    a short-lived session of its own: a hit touches no database connection."""

    async def load() -> bytes:
        async with resources.sessionmaker() as session:
            product = await repository.get_live(session, product_id)
            if product is None:
                raise NotFound(NOT_FOUND)
            return ProductOut.model_validate(product).model_dump_json().encode()

    return await resources.cache.get_or_compute(
        cache_key(product_id), resources.settings.product_cache_ttl_seconds, load
    )


async def page(session: AsyncSession, filters: ProductFilters, limit: int, offset: int) -> tuple[list[Product], int]:
    return await repository.page(session, filters, limit, offset)


async def _owned(session: AsyncSession, user: User, product_id: int) -> Product:
    product = await repository.get_live(session, product_id)
    if product is None:
        raise NotFound(NOT_FOUND)
    if product.owner_id != user.id:
        raise Forbidden("Only the product's owner may change it")
    return product


async def update(session: AsyncSession, cache: Cache, user: User, product_id: int, data: ProductUpdate) -> Product:
    product = await _owned(session, user, product_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(product, field, value)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_products(session, cache, [product.id])
    return product


async def delete(session: AsyncSession, cache: Cache, user: User, product_id: int) -> None:
    product = await _owned(session, user, product_id)
    product.deleted_at = utcnow()
    await session.flush()
    invalidate_products(session, cache, [product.id])
    invalidate_stats(session, cache)
