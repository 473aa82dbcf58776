"""Integration fixtures: real PostgreSQL and Redis servers started for the
session on free loopback ports; every test gets a fresh database cloned from
an Alembic-migrated template, and an emptied Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from sqlalchemy.engine import URL

from app.auth.dependencies import AuthServices
from app.platform.config import Settings
from app.platform.state import Platform
from tests.conftest import make_settings
from tests.support.app import Started, started
from tests.support.servers import PG_USER, PostgresServer, migrate, postgres_server

TEMPLATE_DB = "storefront_template"

# Any free loopback port in this range (pytest-redis picks and checks it).
redis_proc = factories.redis_proc(host="127.0.0.1", port=(20000, 60000))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        template = DatabaseJanitor(
            user=PG_USER, host=server.host, port=server.port, dbname=TEMPLATE_DB, as_template=True
        )
        template.init()
        migrate(server.url(TEMPLATE_DB))
        yield server


@pytest.fixture
def database_url(pg_server: PostgresServer) -> Iterator[URL]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    janitor = DatabaseJanitor(
        user=PG_USER, host=pg_server.host, port=pg_server.port, dbname=name, template_dbname=TEMPLATE_DB
    )
    janitor.init()
    yield pg_server.url(name)
    janitor.drop()


@pytest.fixture
def redis_url(redis_proc: RedisExecutor) -> str:
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
    return url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(database_url: URL, redis_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(
        database_url=database_url.render_as_string(hide_password=False),
        redis_url=redis_url,
        **settings_overrides,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Started]:
    async with started(settings) as running:
        yield running


@pytest.fixture
def platform(app: Started) -> Platform:
    return app.state["platform"]


@pytest.fixture
def auth(app: Started) -> AuthServices:
    return app.state["auth"]


@pytest.fixture
async def client(app: Started) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app instance of its own (started and stopped here)."""
    async with (
        started(settings) as running,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=running.asgi), base_url="http://replica") as http,
    ):
        yield http


@pytest.fixture
async def replica(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another replica: its own process state, the same PostgreSQL and Redis."""
    async with app_client(settings) as http:
        yield http
