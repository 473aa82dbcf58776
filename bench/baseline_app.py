"""The practical limit: Starlette + a raw asyncpg pool + orjson, issuing the
same SQL as the service and returning the same bytes. Benchmark baseline only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PRODUCT_SQL = (
    "SELECT id, name, description, price, stock, owner_id, created_at, updated_at"
    " FROM products WHERE id = $1 AND deleted_at IS NULL"
)
pool: Any = None


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=5, max_size=5)
    yield
    await pool.close()


async def static(_: Request) -> Response:
    return Response(orjson.dumps({"status": "healthy"}), media_type="application/json")


async def product(request: Request) -> Response:
    row = await pool.fetchrow(PRODUCT_SQL, int(request.path_params["product_id"]))
    if row is None:
        return Response(b'{"detail":"not found"}', status_code=404, media_type="application/json")
    body = dict(row)
    body["price"] = str(body["price"])
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(
    routes=[Route("/static", static), Route("/products/{product_id:int}", product)],
    lifespan=lifespan,
)
