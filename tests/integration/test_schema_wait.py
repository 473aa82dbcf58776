"""`python -m app.ops.schema wait`: what API pods run before starting."""

from __future__ import annotations

import asyncio
import uuid

from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

from app.ops.schema import head_revision, wait_for_head
from tests.conftest import make_settings
from tests.support.servers import PG_USER, PostgresServer, migrate


async def test_migrated_database_is_at_head(database_url: URL) -> None:
    settings = make_settings(database_url=database_url.render_as_string(hide_password=False))
    assert head_revision() is not None
    assert await wait_for_head(settings, within=5) is True


async def test_unmigrated_database_times_out_then_passes_once_migrated(pg_server: PostgresServer) -> None:
    name = f"bare_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(user=PG_USER, host=pg_server.host, port=pg_server.port, dbname=name)
    janitor.init()
    try:
        settings = make_settings(database_url=pg_server.url(name).render_as_string(hide_password=False))
        assert await wait_for_head(settings, within=0.5, interval=0.1) is False
        await asyncio.to_thread(migrate, pg_server.url(name))
        assert await wait_for_head(settings, within=5, interval=0.1) is True
    finally:
        janitor.drop()


async def test_unreachable_database_times_out() -> None:
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", db_connect_within=0.5)
    assert await wait_for_head(settings, within=0.5, interval=0.1) is False
