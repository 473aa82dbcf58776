"""Alembic environment: async engine, advisory lock, lock timeout, a bounded
wait for an unreachable database, and a record of the revisions applied.

- Only *reaching* the database is retried (DB_WAIT_SECONDS, for a fresh
  install that starts the database and the migration Job together). Once
  connected, the migrations run once: a broken migration fails at once.
- DDL runs with `lock_timeout` (DB_MIGRATION_LOCK_TIMEOUT_MS): an ALTER that
  queues behind API transactions would make every later query on that table
  queue behind it, stalling all traffic. It fails instead; the Job retries.
- Every revision applied is recorded in `alembic_revision_history` with its
  down revisions, so pods of an older release can tell a newer schema that
  descends from theirs from an unrelated one (app/ops/schema.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script.revision import ResolutionError
from sqlalchemy import pool, select, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app import models  # noqa: F401  (registers every table on Base.metadata)
from app.ops.schema import HISTORY_TABLE, leads_down_to, recorded_parents
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
LOCK_NOT_AVAILABLE = "55P03"
RETRY_INTERVAL = 2.0


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


def _skip_history_table(name: str | None, type_: str, _parent: object) -> bool:
    # Not part of the models: autogenerate must neither create nor drop it.
    return not (type_ == "table" and name == HISTORY_TABLE.name)


def _record_revision(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic's on_version_apply hook (called with these keyword names)."""
    connection = ctx.connection
    if connection is None:  # offline (--sql) mode: nothing to record
        return
    revision = step.up_revision_id
    connection.execute(HISTORY_TABLE.delete().where(HISTORY_TABLE.c.revision == revision))
    if step.is_upgrade:
        connection.execute(
            HISTORY_TABLE.insert().values(revision=revision, down_revisions=",".join(step.down_revision_ids))
        )


def _run_migrations(connection: Connection, lock_timeout_ms: int) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=_skip_history_table,
        on_version_apply=_record_revision,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two runners (a Job retried, two releases, a developer) never race:
            # the second waits here, then finds the schema already at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            # After the advisory lock (it is a lock too, and may rightly wait).
            connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        HISTORY_TABLE.create(connection, checkfirst=True)
        newer = _newer_than_this_code(connection)
        if newer is not None:
            log.info(
                "the schema is at %s, newer than this code's head %s and recorded as descending from it "
                "(a rolled-back release): nothing to upgrade",
                newer,
                context.script.get_current_head(),
            )
            return
        try:
            context.run_migrations()
        except DBAPIError as exc:
            if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
                log.error(
                    "a migration waited more than %s ms for a lock held by other transactions; "
                    "nothing was changed, run it again (the migration Job retries)",
                    lock_timeout_ms,
                )
            raise


def _newer_than_this_code(connection: Connection) -> str | None:
    """For `upgrade head`: the database's revision when this code does not know
    it but the recorded history leads from it down to this code's head.

    That is a release rolled back to older code after its migrations ran: the
    schema is ahead (expand/contract keeps it compatible) and there is nothing
    to do. Alembic itself would fail on the unknown revision, and the rolled
    back release's migration Job with it. Anything else unknown still fails.
    """
    script = context.script
    try:
        # Alembic hands over "head" already resolved to the head revision(s).
        destination = context.get_revision_argument()
    except KeyError:
        return None  # a command without a destination (`alembic current`, ...)
    targets = {destination} if isinstance(destination, str) else set(destination or ())
    if not targets or targets != set(script.get_heads()):
        return None
    head = script.get_current_head()
    current = context.get_context().get_current_heads()
    if head is None or not current:
        return None
    try:
        for revision in current:
            script.revision_map.get_revision(revision)
        return None  # known revisions: the normal path
    except ResolutionError:
        pass
    parents = recorded_parents(connection.execute(select(HISTORY_TABLE.c.revision, HISTORY_TABLE.c.down_revisions)))
    if all(leads_down_to(parents, revision, head) for revision in current):
        return ",".join(current)
    return None


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_unreachable(exc: BaseException) -> bool:
    """The database could not be reached (worth waiting for), as opposed to a
    database that answered with an error (never worth retrying)."""
    if isinstance(exc, OSError):  # refused, unreachable, timed out (TimeoutError is an OSError)
        return True
    code = _sqlstate(exc)
    if code is not None:
        # 08: connection exception; 57P03: cannot connect now (starting up).
        return code.startswith("08") or code == "57P03"
    # A connection lost without a SQLSTATE (asyncpg's ConnectionDoesNotExistError).
    return isinstance(exc, InterfaceError)


async def _connect(engine: AsyncEngine, wait_seconds: float) -> AsyncConnection:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await engine.connect()
        except Exception as exc:
            if not is_unreachable(exc) or time.monotonic() >= deadline:
                raise
            # A fresh install starts the database and this Job together.
            log.info("database not reachable yet (%s), retrying", type(exc).__name__)
            await asyncio.sleep(RETRY_INTERVAL)


async def _migrate(url: URL, wait_seconds: float, lock_timeout_ms: int) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        # Only connecting is retried: once connected, a failure is the migration's own.
        connection = await _connect(engine, wait_seconds)
        try:
            await connection.run_sync(_run_migrations, lock_timeout_ms)
            await connection.commit()
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    settings = DatabaseSettings()
    asyncio.run(
        _migrate(
            _database_url(),
            float(config.attributes.get("wait_seconds", settings.db_wait_seconds)),
            int(config.attributes.get("lock_timeout_ms", settings.db_migration_lock_timeout_ms)),
        )
    )
