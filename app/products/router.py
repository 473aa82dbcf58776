from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.auth.dependencies import CurrentUser
from app.platform.openapi import link
from app.platform.responses import CACHE_HEADER, cached_json, model_json
from app.platform.schemas import IdPath, Page, problems
from app.platform.session import SessionDep
from app.platform.state import PlatformDep
from app.products import service
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductFilters, ProductOut, ProductUpdate

router = APIRouter(prefix="/products", tags=["products"])

_ONE_PRODUCT = "/products/{product_id}"
_CREATED_PRODUCT = "$response.body#/id"


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductOut,
    responses={
        201: {
            "links": {
                "GetProductById": link(_ONE_PRODUCT, "get", product_id=_CREATED_PRODUCT),
                "UpdateProductById": link(_ONE_PRODUCT, "patch", product_id=_CREATED_PRODUCT),
                "DeleteProductById": link(_ONE_PRODUCT, "delete", product_id=_CREATED_PRODUCT),
            }
        },
        **problems(401),
    },
)
async def create_product(data: ProductCreate, user: CurrentUser, session: SessionDep, response: Response) -> Product:
    product = await service.create(session, user, data)
    response.headers["Location"] = f"/products/{product.id}"
    return product


@router.get(
    "/{product_id}",
    response_model=ProductOut,
    responses={200: {"headers": CACHE_HEADER}, **problems(404)},
)
async def read_product(product_id: IdPath, platform: PlatformDep) -> Response:
    return cached_json(await service.get_cached(platform, product_id))


@router.get("/", response_model=Page[ProductOut])
async def list_products(platform: PlatformDep, filters: Annotated[ProductFilters, Query()]) -> Response:
    return model_json(await service.page(platform, filters))


@router.patch("/{product_id}", response_model=ProductOut, responses=problems(401, 403, 404))
async def update_product(product_id: IdPath, data: ProductUpdate, user: CurrentUser, session: SessionDep) -> Product:
    return await service.update(session, user, product_id, data)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 403, 404))
async def delete_product(product_id: IdPath, user: CurrentUser, session: SessionDep) -> Response:
    await service.delete(session, user, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
