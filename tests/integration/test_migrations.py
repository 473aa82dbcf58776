"""Finding 8: migrations retry only while the database is unreachable, and
their DDL gives up on a lock rather than stall all traffic behind it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.ops.schema import head_revision
from tests.support.migrations import current, upgrade, write_revision


async def _version(url: URL) -> str:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return str((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one())
    finally:
        await engine.dispose()


async def test_a_broken_migration_fails_at_once_even_with_a_long_wait(database_url: URL, tmp_path: Path) -> None:
    """It used to be retried for DB_WAIT_SECONDS, as if the database were down."""
    write_revision(tmp_path, "9001_broken", head_revision(), 'op.execute("SELECT no_such_column FROM users")')
    started = time.monotonic()
    with pytest.raises(DBAPIError, match="no_such_column"):
        await asyncio.to_thread(upgrade, database_url, extra_versions=tmp_path, wait_seconds=60)
    assert time.monotonic() - started < 10  # not 60: no retry
    assert await _version(database_url) == head_revision()


async def test_ddl_gives_up_on_a_lock_instead_of_stalling_traffic(database_url: URL, tmp_path: Path) -> None:
    """An API transaction holds a lock on users; the ALTER must not queue
    behind it for long, because every query on users would queue behind it."""
    write_revision(
        tmp_path, "9002_nickname", head_revision(), 'op.add_column("users", sa.Column("nickname", sa.String(20)))'
    )
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with asyncio.timeout(30), engine.connect() as api_transaction, engine.connect() as reader:
            await api_transaction.execute(text("SELECT count(*) FROM users"))  # holds ACCESS SHARE until it ends
            migration = asyncio.create_task(
                asyncio.to_thread(upgrade, database_url, extra_versions=tmp_path, lock_timeout_ms=500)
            )
            await asyncio.sleep(0.2)  # the ALTER is queued by now
            started = time.monotonic()
            await reader.execute(text("SELECT count(*) FROM users"))  # queued behind the ALTER...
            read_wait = time.monotonic() - started
            with pytest.raises(DBAPIError) as failure:
                await migration
            await api_transaction.rollback()
        assert getattr(failure.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
        assert read_wait < 2  # ...only until the ALTER gave up (500 ms), not until the API transaction ends
    finally:
        await engine.dispose()
    assert await _version(database_url) == head_revision()  # all or nothing


async def test_an_unreachable_database_is_waited_for_then_reported() -> None:
    closed = URL.create("postgresql+asyncpg", username="nobody", host="127.0.0.1", port=1, database="none")
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(upgrade, closed, wait_seconds=1)
    assert time.monotonic() - started >= 1  # retried until the wait was over


async def test_a_rolled_back_release_leaves_a_newer_schema_alone(database_url: URL, tmp_path: Path) -> None:
    """`helm rollback` re-creates the older release's migration Job; the
    schema is at a revision that release has no file for but that is recorded
    as descending from its head: nothing to do (Alembic alone would fail with
    "Can't locate revision")."""
    # Commands without a destination revision go through the same check.
    await asyncio.to_thread(current, database_url)
    write_revision(tmp_path, "9100_newer", head_revision(), 'op.add_column("users", sa.Column("tag", sa.String(8)))')
    await asyncio.to_thread(upgrade, database_url, extra_versions=tmp_path)
    await asyncio.to_thread(upgrade, database_url)  # the older code's `alembic upgrade head`
    assert await _version(database_url) == "9100_newer"


async def test_an_unknown_unrecorded_revision_still_fails(database_url: URL, tmp_path: Path) -> None:
    write_revision(tmp_path, "9101_stray", head_revision(), 'op.add_column("users", sa.Column("tag", sa.String(8)))')
    await asyncio.to_thread(upgrade, database_url, extra_versions=tmp_path)
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM alembic_revision_history WHERE revision = '9101_stray'"))
    finally:
        await engine.dispose()
    with pytest.raises(CommandError, match="Can't locate revision identified by '9101_stray'"):
        await asyncio.to_thread(upgrade, database_url)
