from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.auth.dependencies import CurrentUser
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.resources import ResourcesDep
from app.core.responses import cached_json
from app.core.schemas import LimitQuery, OffsetQuery, Page, problems
from app.products import service
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductFilters, ProductOut, ProductSort, ProductUpdate

router = APIRouter(prefix="/products", tags=["products"])

ProductId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PriceQuery = Annotated[Decimal | None, Query(ge=0, lt=10**9, max_digits=11, decimal_places=2, allow_inf_nan=False)]
CACHE_HEADER = {
    "X-Cache": {"description": "HIT when served from the cache, MISS otherwise", "schema": {"type": "string"}}
}


class InvalidPriceRange(AppError):
    status_code = 422


@router.post(
    "/", status_code=status.HTTP_201_CREATED, response_model=ProductOut, responses=problems(401, 413, 422, 503)
)
async def create_product(
    data: ProductCreate, user: CurrentUser, session: SessionDep, resources: ResourcesDep, response: Response
) -> Product:
    product = await service.create(session, resources.cache, user, data)
    response.headers["Location"] = f"/products/{product.id}"
    return product


@router.get(
    "/{product_id}",
    response_model=ProductOut,
    responses={200: {"headers": CACHE_HEADER}, **problems(404, 422, 503)},
)
async def read_product(product_id: ProductId, resources: ResourcesDep) -> Response:
    return cached_json(await service.get_cached(resources, product_id))


@router.get("/", response_model=Page[ProductOut], responses=problems(422, 503))
async def list_products(
    session: SessionDep,
    limit: LimitQuery = 20,
    offset: OffsetQuery = 0,
    q: Annotated[str | None, Query(max_length=200, description="Name contains (case-insensitive)")] = None,
    min_price: PriceQuery = None,
    max_price: PriceQuery = None,
    sort: ProductSort = ProductSort.CREATED_DESC,
) -> Page[ProductOut]:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidPriceRange("min_price must not exceed max_price")
    filters = ProductFilters(q=q, min_price=min_price, max_price=max_price, sort=sort)
    items, total = await service.page(session, filters, limit, offset)
    return Page[ProductOut](
        items=[ProductOut.model_validate(item) for item in items], total=total, limit=limit, offset=offset
    )


@router.patch("/{product_id}", response_model=ProductOut, responses=problems(401, 403, 404, 422, 503))
async def update_product(
    product_id: ProductId, data: ProductUpdate, user: CurrentUser, session: SessionDep, resources: ResourcesDep
) -> Product:
    return await service.update(session, resources.cache, user, product_id, data)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 403, 404, 422, 503))
async def delete_product(
    product_id: ProductId, user: CurrentUser, session: SessionDep, resources: ResourcesDep
) -> Response:
    await service.delete(session, resources.cache, user, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
