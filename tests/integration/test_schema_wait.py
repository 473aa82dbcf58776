"""`python -m app.ops.schema wait`: what API pods run before starting."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.ops.schema import head_revision, wait_for_head
from tests.conftest import make_settings
from tests.support.migrations import downgrade, upgrade, write_revision
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
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", db_connect_timeout=0.5)
    assert await wait_for_head(settings, within=0.5, interval=0.1) is False


async def test_a_rolled_back_release_starts_on_the_newer_schema(database_url: URL, tmp_path: Path) -> None:
    """The release rolled back from applied a revision this code has no file
    for; it is recorded as descending from our head, so pods start."""
    write_revision(
        tmp_path,
        "9100_newer",
        head_revision(),
        'op.create_table("gadgets", sa.Column("id", sa.Integer, primary_key=True))',
    )
    await asyncio.to_thread(upgrade, database_url, extra_versions=tmp_path)
    settings = make_settings(database_url=database_url.render_as_string(hide_password=False))
    assert await wait_for_head(settings, within=5, interval=0.1) is True


async def test_an_unrecorded_unknown_revision_keeps_pods_waiting(database_url: URL) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_elsewhere'"))
    finally:
        await engine.dispose()
    settings = make_settings(database_url=database_url.render_as_string(hide_password=False))
    assert await wait_for_head(settings, within=0.5, interval=0.1) is False


async def test_an_older_schema_keeps_pods_waiting(database_url: URL) -> None:
    await asyncio.to_thread(downgrade, database_url, "0001")
    settings = make_settings(database_url=database_url.render_as_string(hide_password=False))
    assert await wait_for_head(settings, within=0.5, interval=0.1) is False
