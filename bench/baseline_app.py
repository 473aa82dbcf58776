"""The practical limit: Starlette + a raw asyncpg pool + orjson, doing the
service's work with the service's SQL and returning the service's bytes.

Benchmark baseline only. It imports nothing from `app`: it is what a careful
hand-written service would do. The statements are the ones the service sends
(captured with PostgreSQL's log_statement=all, listed in bench/README.md),
minus what the service adds around them: the pool's pre-ping and, for
single-statement reads, the BEGIN/ROLLBACK of a session. Writes keep their
transaction, savepoint included. `bench/run.py` checks that both apps return
the same bytes before it measures anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
import asyncpg
import jwt
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# The service's defaults (app/platform/config.py), which the benchmark keeps.
ISSUER = "storefront"
AUDIENCE = "storefront-api"
ACCESS_TTL = timedelta(seconds=int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", "900")))
REFRESH_TTL = timedelta(days=14)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "type"]
CENT = Decimal("0.01")
JSON = "application/json"

PRODUCT_COLUMNS = (
    "products.id, products.name, products.description, products.price, products.stock, products.owner_id,"
    " products.created_at, products.updated_at, products.deleted_at"
)
PRODUCT_BY_ID = (
    f"SELECT {PRODUCT_COLUMNS} \nFROM products \nWHERE products.id = $1::INTEGER AND products.deleted_at IS NULL"
)
PRODUCT_COUNT = (
    "SELECT count(*) AS count_1 \nFROM (SELECT products.id AS id, products.name AS name,"
    " products.description AS description, products.price AS price, products.stock AS stock,"
    " products.owner_id AS owner_id, products.created_at AS created_at, products.updated_at AS updated_at,"
    " products.deleted_at AS deleted_at \nFROM products \nWHERE products.deleted_at IS NULL) AS anon_1"
)
PRODUCT_PAGE = (
    f"SELECT {PRODUCT_COLUMNS} \nFROM products \nWHERE products.deleted_at IS NULL"
    " ORDER BY products.created_at DESC, products.id DESC \n LIMIT $1::INTEGER OFFSET $2::INTEGER"
)
USER_COLUMNS = "users.id, users.email, users.username, users.password_hash, users.is_active, users.created_at"
USER_BY_ID = f"SELECT {USER_COLUMNS} \nFROM users \nWHERE users.id = $1::INTEGER"
USER_BY_USERNAME = f"SELECT {USER_COLUMNS} \nFROM users \nWHERE lower(users.username) = $1::VARCHAR"
USER_BY_EMAIL = f"SELECT {USER_COLUMNS} \nFROM users \nWHERE lower(users.email) = $1::VARCHAR"
ORDER_BY_KEY = (
    "SELECT orders.id, orders.user_id, orders.status, orders.total, orders.idempotency_key, orders.request_hash,"
    " orders.created_at, orders.updated_at \nFROM orders \n"
    "WHERE orders.user_id = $1::INTEGER AND orders.idempotency_key = $2::VARCHAR"
)
ORDER_ITEMS_OF = (
    "SELECT order_items.order_id, order_items.id, order_items.product_id, order_items.name,"
    " order_items.unit_price, order_items.quantity \nFROM order_items \n"
    "WHERE order_items.order_id IN ($1::INTEGER) ORDER BY order_items.id"
)
ORDER_INSERT = (
    "INSERT INTO orders (user_id, status, total, idempotency_key, request_hash, created_at, updated_at)"
    " VALUES ($1::INTEGER, $2::VARCHAR, $3::NUMERIC(14, 2), $4::VARCHAR, $5::VARCHAR,"
    " $6::TIMESTAMP WITH TIME ZONE, $7::TIMESTAMP WITH TIME ZONE) RETURNING orders.id"
)
TAKE_STOCK = (
    "UPDATE products SET stock=(products.stock - $1::INTEGER), updated_at=$2::TIMESTAMP WITH TIME ZONE"
    " WHERE products.id = $3::INTEGER AND products.deleted_at IS NULL AND products.stock >= $4::INTEGER"
    " RETURNING products.name, products.price"
)
LIVE_PRODUCT = "SELECT products.id \nFROM products \nWHERE products.id IN ($1::INTEGER) AND products.deleted_at IS NULL"
ORDER_TOTAL = "UPDATE orders SET total=$1::NUMERIC(14, 2) WHERE orders.id = $2::INTEGER"
ITEM_COLUMNS = "(order_id, product_id, name, unit_price, quantity)"
ITEM_VALUES = "($%d::INTEGER, $%d::INTEGER, $%d::VARCHAR, $%d::NUMERIC(12, 2), $%d::INTEGER)"
FAMILY_INSERT = (
    "INSERT INTO token_families (id, user_id, created_at, revoked_at, revoked_reason) VALUES ($1::VARCHAR,"
    " $2::INTEGER, $3::TIMESTAMP WITH TIME ZONE, $4::TIMESTAMP WITH TIME ZONE, $5::VARCHAR)"
)
TOKEN_INSERT = (
    "INSERT INTO refresh_tokens (family_id, token_hash, expires_at, used_at, created_at) VALUES ($1::VARCHAR,"
    " $2::VARCHAR, $3::TIMESTAMP WITH TIME ZONE, $4::TIMESTAMP WITH TIME ZONE, $5::TIMESTAMP WITH TIME ZONE)"
    " RETURNING refresh_tokens.id"
)


def _items_insert(count: int) -> str:
    """One INSERT for all items (the service's ORM batches them into one statement too)."""
    rows = ", ".join(ITEM_VALUES % tuple(range(5 * i + 1, 5 * i + 6)) for i in range(count))
    return f"INSERT INTO order_items {ITEM_COLUMNS} VALUES {rows}"  # noqa: S608  (placeholders only)


class Baseline:
    """What the lifespan opens: the pool, the key, the hasher."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool = None
        self.key = os.environ["SECRET_KEY"]
        self.kid = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        # The service's Argon2id parameters and its cap of concurrent hashes.
        self.hasher = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4)
        self.hash_slots = anyio.Semaphore(2)


state = Baseline()


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    size = int(os.environ.get("BASELINE_POOL_SIZE", "10"))
    state.pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=size, max_size=size)
    yield
    await state.pool.close()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), status, headers, media_type=JSON)


def _problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": str(status), "status": status, "detail": detail}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status, headers, media_type="application/problem+json")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _product(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "price": _money(row["price"]),
        "stock": row["stock"],
        "owner_id": row["owner_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _user(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "username": row["username"],
        "created_at": row["created_at"],
        "is_active": row["is_active"],
    }


async def static(_: Request) -> Response:
    return _json({"status": "healthy"})


async def product(request: Request) -> Response:
    row = await state.pool.fetchrow(PRODUCT_BY_ID, request.path_params["product_id"])
    if row is None:
        return _problem(404, "Product not found")
    return _json(_product(row))


async def products(request: Request) -> Response:
    try:
        limit = int(request.query_params.get("limit", "20"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        return _problem(422, "limit and offset are integers")
    if not 1 <= limit <= 100 or offset < 0:
        return _problem(422, "limit is 1..100, offset >= 0")
    async with state.pool.acquire() as connection:
        total = await connection.fetchval(PRODUCT_COUNT)
        rows = await connection.fetch(PRODUCT_PAGE, limit, offset) if total > offset else []
    return _json({"items": [_product(row) for row in rows], "total": total, "limit": limit, "offset": offset})


def _user_id(request: Request) -> int | None:
    """The subject of a valid access token, verified as the service does."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        if jwt.get_unverified_header(token).get("kid") != state.kid:
            return None
        claims = jwt.decode(
            token,
            state.key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    if claims.get("type") != "access" or not isinstance(subject, str) or not subject.isdigit() or len(subject) > 18:
        return None
    return int(subject)


async def _current_user(request: Request, connection: asyncpg.Connection) -> asyncpg.Record | None:
    user_id = _user_id(request)
    if user_id is None:
        return None
    row = await connection.fetchrow(USER_BY_ID, user_id)
    return row if row is not None and row["is_active"] else None


async def me(request: Request) -> Response:
    async with state.pool.acquire() as connection:
        user = await _current_user(request, connection)
    if user is None:
        return _problem(401, "Not authenticated")
    return _json(_user(user))


def _order_lines(body: bytes) -> list[tuple[int, int]] | None:
    """(product_id, quantity) pairs sorted by product id, or None when invalid."""
    try:
        data = orjson.loads(body)
        lines = [(int(item["product_id"]), int(item["quantity"])) for item in data["items"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    ids = [product_id for product_id, _ in lines]
    if not 1 <= len(lines) <= 50 or len(set(ids)) != len(ids):
        return None
    if not all(1 <= product_id <= 2**31 - 1 and 1 <= quantity <= 1000 for product_id, quantity in lines):
        return None
    return sorted(lines)


def _fingerprint(lines: list[tuple[int, int]]) -> str:
    # json, not orjson: the service hashes json.dumps' text, spaces included.
    return hashlib.sha256(json.dumps(lines).encode()).hexdigest()


def _order(order_id: int, user_id: int, total: Decimal, items: list[dict[str, Any]], created: datetime) -> Response:
    body = {
        "id": order_id,
        "user_id": user_id,
        "status": "created",
        "total": _money(total),
        "items": items,
        "created_at": created,
    }
    return _json(body, 201, {"Location": f"/orders/{order_id}"})


async def create_order(request: Request) -> Response:
    lines = _order_lines(await request.body())
    if lines is None:
        return _problem(422, "invalid order")
    key = request.headers.get("idempotency-key")
    fingerprint = _fingerprint(lines)
    async with state.pool.acquire() as connection:
        try:
            async with connection.transaction():  # the user's row is read inside it, as the service does
                user = await _current_user(request, connection)
                if user is None:
                    raise _Refused(_problem(401, "Not authenticated"))
                return await _place(connection, user["id"], lines, key, fingerprint)
        except _Refused as refused:
            return refused.response


class _Refused(Exception):
    """Rolls the order's transaction back and answers `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _place(
    connection: asyncpg.Connection, user_id: int, lines: list[tuple[int, int]], key: str | None, fingerprint: str
) -> Response:
    if key is not None and (existing := await connection.fetchrow(ORDER_BY_KEY, user_id, key)) is not None:
        return await _replay(connection, existing, fingerprint)
    now = datetime.now(UTC)
    try:
        async with connection.transaction():  # the savepoint around the key's insert
            order_id = await connection.fetchval(ORDER_INSERT, user_id, "created", 0, key, fingerprint, now, now)
    except asyncpg.UniqueViolationError:
        existing = await connection.fetchrow(ORDER_BY_KEY, user_id, key)
        return await _replay(connection, existing, fingerprint)
    items: list[dict[str, Any]] = []
    values: list[Any] = []
    total = Decimal(0)
    for product_id, quantity in lines:  # in product-id order, as the service locks them
        taken = await connection.fetchrow(TAKE_STOCK, quantity, now, product_id, quantity)
        if taken is None:
            live = await connection.fetchval(LIVE_PRODUCT, product_id)
            detail = f"Insufficient stock for product {product_id}" if live else f"Product {product_id} not found"
            raise _Refused(_problem(409 if live else 404, detail))
        total += taken["price"] * quantity
        items.append(
            {
                "product_id": product_id,
                "name": taken["name"],
                "quantity": quantity,
                "unit_price": _money(taken["price"]),
            }
        )
        values += [order_id, product_id, taken["name"], taken["price"], quantity]
    await connection.execute(ORDER_TOTAL, total, order_id)
    await connection.execute(_items_insert(len(lines)), *values)
    return _order(order_id, user_id, total, items, now)


async def _replay(connection: asyncpg.Connection, order: asyncpg.Record, fingerprint: str) -> Response:
    if order["request_hash"] != fingerprint:
        raise _Refused(_problem(422, "This Idempotency-Key was already used for a different request"))
    rows = await connection.fetch(ORDER_ITEMS_OF, order["id"])
    items = [
        {
            "product_id": r["product_id"],
            "name": r["name"],
            "quantity": r["quantity"],
            "unit_price": _money(r["unit_price"]),
        }
        for r in rows
    ]
    response = _order(order["id"], order["user_id"], order["total"], items, order["created_at"])
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return state.hasher.verify(stored_hash, password)
    except VerificationError:
        return False


async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode(), keep_blank_values=True)
    username = form.get("username", [""])[0]
    password = form.get("password", [""])[0]
    if not username or not password:
        return _problem(422, "username and password are required")
    async with state.pool.acquire() as connection, connection.transaction():
        user = await connection.fetchrow(USER_BY_EMAIL if "@" in username else USER_BY_USERNAME, username.lower())
        if user is None:
            return _problem(401, "Incorrect username or password")
        async with state.hash_slots:
            valid = await anyio.to_thread.run_sync(_verify, user["password_hash"], password)
        if not valid or not user["is_active"]:
            return _problem(401, "Incorrect username or password")
        now = datetime.now(UTC)
        family = uuid.uuid4().hex
        await connection.execute(FAMILY_INSERT, family, user["id"], now, None, None)
        access = _issue(user["id"], "access", now, ACCESS_TTL)
        refresh = _issue(user["id"], "refresh", now, REFRESH_TTL)
        digest = hashlib.sha256(refresh.encode()).hexdigest()
        await connection.fetchval(TOKEN_INSERT, family, digest, now + REFRESH_TTL, None, datetime.now(UTC))
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(ACCESS_TTL.total_seconds()),
        "refresh_token": refresh,
    }
    return _json(body)


def _issue(user_id: int, token_type: str, now: datetime, ttl: timedelta) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "type": token_type,
    }
    return jwt.encode(claims, state.key, algorithm="HS256", headers={"kid": state.kid})


app = Starlette(
    routes=[
        Route("/static", static),
        Route("/products/{product_id:int}", product),
        Route("/products/", products),
        Route("/users/me", me),
        Route("/orders/", create_order, methods=["POST"]),
        Route("/auth/token", login, methods=["POST"]),
    ],
    lifespan=lifespan,
)
