"""Image suite fixtures: the built image, real PostgreSQL and Redis on the
host's loopback (the containers use host networking), a database migrated by
the image itself, and the image's server running hardened against them."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, LiteralString

import port_for
import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from sqlalchemy.engine import URL

from tests.conftest import TEST_SECRET
from tests.image.containers import (
    Container,
    container,
    docker,
    inspect,
    run_to_completion,
    server_command,
    wait_until_serving,
)
from tests.support.servers import PG_USER, REPO, PostgresServer, postgres_server

redis_proc = factories.redis_proc(host="127.0.0.1", port=(20000, 60000))


@pytest.fixture(scope="session")
def image() -> str:
    """The image `make image` built: STOREFRONT_IMAGE (set by `make
    image-test`), else built here through make."""
    ref = os.environ.get("STOREFRONT_IMAGE", "")
    if not ref:
        subprocess.run(["make", "--no-print-directory", "image"], cwd=REPO, check=True, timeout=1800)
        printed = subprocess.run(
            ["make", "--no-print-directory", "-s", "print-image"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ref = printed.stdout.strip().splitlines()[-1]
    docker("image", "inspect", ref)
    return ref


@pytest.fixture(scope="session")
def image_config(image: str) -> dict[str, Any]:
    config: dict[str, Any] = inspect(image)["Config"]
    return config


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def create_database(server: PostgresServer) -> tuple[DatabaseJanitor, URL]:
    name = f"image_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(user=PG_USER, host=server.host, port=server.port, dbname=name)
    janitor.init()
    return janitor, server.url(name)


def container_database_url(url: URL) -> str:
    """DATABASE_URL as a deployment sets it (the app picks asyncpg itself)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def query(url: URL, sql: LiteralString) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, connect_timeout=5
    ) as connection:
        return connection.execute(sql).fetchall()


def migrate_with_image(image: str, url: URL, **env: str) -> tuple[int, str]:
    return run_to_completion(
        image, "alembic", "upgrade", "head", env={"DATABASE_URL": container_database_url(url), **env}, timeout=180
    )


@pytest.fixture(scope="session")
def migrated_database(image: str, pg_server: PostgresServer) -> Iterator[URL]:
    """A fresh database migrated by the image itself, on a read-only root."""
    janitor, url = create_database(pg_server)
    code, output = migrate_with_image(image, url)
    assert code == 0, output
    yield url
    janitor.drop()


@pytest.fixture(scope="session")
def redis_url(redis_proc: RedisExecutor) -> str:
    return f"redis://{redis_proc.host}:{redis_proc.port}/0"


def server_env(database: URL, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": container_database_url(database),
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        **extra,
    }


@pytest.fixture(scope="module")
def server(
    image: str, image_config: dict[str, Any], migrated_database: URL, redis_url: str
) -> Iterator[tuple[Container, str]]:
    """The image's server as production runs it, hardened; (container, base URL)."""
    port = int(port_for.select_random())
    env = server_env(
        migrated_database,
        redis_url,
        ENVIRONMENT="production",
        HEALTHCHECK_URL=f"http://127.0.0.1:{port}/livez",
    )
    with container(
        image, *server_command(image_config, port), env=env, options=["--health-interval=1s", "--health-retries=3"]
    ) as handle:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(handle, base_url)
        yield handle, base_url
