"""Alembic environment: async engine, advisory lock, bounded wait for the DB."""

from __future__ import annotations

import asyncio
import logging
import time
from logging.config import fileConfig
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app import models  # noqa: F401  (registers every table on Base.metadata)
from app.platform.config import DatabaseSettings
from app.platform.database import Base, UTCDateTime
from app.products.money import SQLiteCents

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

target_metadata = Base.metadata
# Any constant works; it only has to be the same for every migration runner.
MIGRATION_LOCK_KEY = 7_312_465_001


def _database_url() -> URL:
    url = config.attributes.get("database_url")
    return url if isinstance(url, URL) else DatabaseSettings().sqlalchemy_url


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application code that may change later.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, SQLiteCents):
        return "sa.BigInteger()"
    return False


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two runners (a Job retried, two releases, a developer) never race:
            # the second waits here, then finds the schema already at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def _migrate(url: URL, wait_seconds: float) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.run_sync(_run_migrations)
                    await connection.commit()
                return
            except (DBAPIError, OSError) as exc:
                # A fresh install starts the database and this Job together.
                if time.monotonic() >= deadline:
                    raise
                log.info("database not reachable yet (%s), retrying", type(exc).__name__)
                await asyncio.sleep(2)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    settings_wait = float(config.attributes.get("wait_seconds", DatabaseSettings().db_wait_seconds))
    asyncio.run(_migrate(_database_url(), settings_wait))
