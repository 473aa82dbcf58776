"""Product rules: ownership, soft deletion, cached reads.

Writes never touch the cache: the row changes they flush invalidate
PRODUCT_BY_ID (and the stats) by declaration (app/products/cache.py).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.platform.cache import Cached
from app.platform.database import utcnow
from app.platform.schemas import Page
from app.platform.session import read_connection
from app.platform.state import Platform
from app.products import repository
from app.products.cache import PRODUCT_BY_ID
from app.products.exceptions import NotProductOwner, ProductNotFound
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductFilters, ProductOut, ProductUpdate
from app.users.models import User


async def create(session: AsyncSession, owner: User, data: ProductCreate) -> Product:
    now = utcnow()
    product = Product(**data.model_dump(), owner_id=owner.id, created_at=now, updated_at=now)
    return await repository.add(session, product)


async def get_cached(platform: Platform, product_id: int) -> Cached:
    """The product's JSON, from the cache when warm. A miss reads the row with
    a short-lived session of its own: a hit touches no database connection."""

    async def load() -> bytes:
        async with read_connection(platform) as connection:
            row = await repository.read_live(connection, product_id)
        if row is None:
            raise ProductNotFound()
        return ProductOut.model_validate(row).model_dump_json().encode()

    return await platform.cache.get_or_compute(
        PRODUCT_BY_ID.key(product_id), platform.settings.product_cache_ttl_seconds, load
    )


async def page(platform: Platform, filters: ProductFilters) -> Page[ProductOut]:
    """A page of the list; its connection is held for the two SELECTs only."""
    async with read_connection(platform) as connection:
        rows, total = await repository.read_page(connection, filters)
    return Page[ProductOut](
        items=[ProductOut.model_validate(row) for row in rows], total=total, limit=filters.limit, offset=filters.offset
    )


async def _owned(session: AsyncSession, user: User, product_id: int) -> Product:
    product = await repository.get_live(session, product_id)
    if product is None:
        raise ProductNotFound()
    if product.owner_id != user.id:
        raise NotProductOwner()
    return product


async def update(session: AsyncSession, user: User, product_id: int, data: ProductUpdate) -> Product:
    product = await _owned(session, user, product_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(product, field, value)
    product.updated_at = utcnow()
    await session.flush()
    return product


async def delete(session: AsyncSession, user: User, product_id: int) -> None:
    product = await _owned(session, user, product_id)
    product.deleted_at = utcnow()
    await session.flush()
