from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from app.auth.dependencies import CurrentUser
from app.orders import service
from app.orders.models import Order
from app.orders.schemas import OrderCreate, OrderOut
from app.platform.openapi import link
from app.platform.responses import model_json
from app.platform.schemas import IdPath, Page, PageQuery, problems
from app.platform.session import SessionDep

router = APIRouter(prefix="/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key (same caller) return the first order and change nothing",
    ),
]


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses={
        201: {
            "links": {
                "GetOrderById": link("/orders/{order_id}", "get", order_id="$response.body#/id"),
                "CancelOrderById": link("/orders/{order_id}/cancel", "post", order_id="$response.body#/id"),
            }
        },
        # 422 also for a total past what an order can hold.
        **problems(401, 404, 409),
    },
)
async def create_order(
    data: OrderCreate,
    user: CurrentUser,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    order, replayed = await service.place(session, user, data, idempotency_key)
    response = model_json(order, status_code=status.HTTP_201_CREATED)
    response.headers["Location"] = f"/orders/{order.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("/", response_model=Page[OrderOut], responses=problems(401))
async def list_orders(user: CurrentUser, session: SessionDep, query: Annotated[PageQuery, Query()]) -> Page[OrderOut]:
    orders, total = await service.page(session, user, query)
    return Page[OrderOut](
        items=[OrderOut.model_validate(o) for o in orders], total=total, limit=query.limit, offset=query.offset
    )


@router.get("/{order_id}", response_model=OrderOut, responses=problems(401, 404))
async def read_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> Order:
    return await service.get(session, user, order_id)


@router.post("/{order_id}/cancel", response_model=OrderOut, responses=problems(401, 404, 409))
async def cancel_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> Order:
    return await service.cancel(session, user, order_id)
