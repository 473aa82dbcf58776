"""The database: declarative base, column types, engine and sessionmaker."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import DateTime, TypeDecorator

from app.platform.config import Settings
from app.platform.db_liveness import DatabaseLiveness, LivenessPolicy
from app.platform.pool import MeteredPool

log = logging.getLogger(__name__)

# Stable constraint names so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite stores no offset and hands back naive values; the API promises ISO 8601
    with an offset, so values are normalised to UTC on the way in and out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class TrackedSession(Session):
    """The session class of every AsyncSession: cache invalidation listens to
    its flushes and statements (see app/platform/invalidation.py)."""


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.sqlalchemy_url
    postgres = url.get_backend_name() == "postgresql"
    options: dict[str, Any] = {
        "poolclass": MeteredPool,
        # Last in, first out: requests reuse the warmest connections, so the
        # ones beyond what the load needs stay idle (and are the only ones
        # pinged, see db_liveness.py) instead of every connection going cold in turn.
        "pool_use_lifo": True,
        # PostgreSQL: no ping per checkout; app/platform/db_liveness.py pings
        # only the connections that may be dead.
        "pool_pre_ping": settings.db_pool_pre_ping and not postgres,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_recycle": settings.db_pool_recycle,
    }
    if postgres:
        # application_name is one of the parameters PgBouncer carries over.
        server_settings = {"application_name": settings.db_application_name}
        command_timeout = None
        if settings.db_statement_timeout_ms:
            if not settings.db_transaction_pooler:
                server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
            # Client-side backstop for a server that stops answering altogether.
            command_timeout = settings.db_statement_timeout_ms / 1000 + 1
        options["connect_args"] = {
            "timeout": settings.db_connect_timeout,
            "command_timeout": command_timeout,
            "server_settings": server_settings,
        }
    else:
        options["connect_args"] = {"timeout": settings.db_connect_timeout}
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    if postgres and settings.db_transaction_pooler and settings.db_statement_timeout_ms:
        _statement_timeout_per_transaction(engine, settings.db_statement_timeout_ms)
    return engine


def _statement_timeout_per_transaction(engine: AsyncEngine, timeout_ms: int) -> None:
    """statement_timeout for each transaction, not each connection: behind a
    transaction pooler a connection's session settings would stay on whatever
    server connection it happened to use, for other clients to inherit."""
    statement = f"SET LOCAL statement_timeout = {int(timeout_ms)}"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(statement)


def create_liveness(engine: AsyncEngine, settings: Settings) -> DatabaseLiveness | None:
    """The liveness checks of a PostgreSQL engine's pool (None elsewhere, or
    with DB_POOL_PRE_PING=false). The caller starts and stops its watchdog."""
    if engine.dialect.name != "postgresql" or not settings.db_pool_pre_ping:
        return None
    liveness = DatabaseLiveness(
        engine=engine,
        # asyncpg's own DSN: the engine URL without the "+asyncpg" driver name.
        probe_dsn=engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
        probe_name=f"{settings.db_application_name}-probe",
        policy=LivenessPolicy(
            idle_seconds=settings.db_ping_idle_seconds,
            ping_timeout=settings.db_ping_timeout,
            connect_timeout=settings.db_connect_timeout,
        ),
    )
    liveness.install()
    return liveness


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make the embedded SQLite default safe for concurrent requests.

    Every transaction starts with BEGIN IMMEDIATE: writers queue on busy_timeout
    instead of failing with SQLITE_BUSY when a read transaction tries to upgrade
    to a write. The embedded default trades concurrency for correctness;
    production runs on PostgreSQL.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def fill_pool(engine: AsyncEngine, size: int, within: float) -> int:
    """Opens `size` pooled connections before the first request, and returns
    how many it opened.

    Without this a new pod opens its connections under its first traffic,
    each a backend fork and a login while the node is busiest (pods starting
    beside it), and on a CPU-starved node such a connect can outlast
    DB_CONNECT_TIMEOUT and answer 503. Opened here, before readiness, they
    cost no request anything. A database that does not answer in `within`
    seconds only leaves the rest to open on demand: readiness reports it.
    """
    opened = 0
    async with AsyncExitStack() as held:  # held at once, so each checkout opens a new one
        try:
            async with asyncio.timeout(within):
                for _ in range(size):
                    await held.enter_async_context(engine.connect())
                    opened += 1
        except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
            log.warning("database pool not filled at startup", extra={"opened": opened, "error": type(exc).__name__})
    return opened


def create_read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads that need no transaction: the same pool, but on
    PostgreSQL each connection runs in AUTOCOMMIT while checked out, so a read
    costs its statements' round trips and no BEGIN / COMMIT around them. At
    READ COMMITTED (the default) every statement takes its own snapshot, in a
    transaction or not, so a read loses nothing by running without one.

    Switching a pooled asyncpg connection to AUTOCOMMIT and back is local to
    the driver adapter: no round trip. SQLite keeps its transactions (its
    connections BEGIN IMMEDIATE themselves, see _configure_sqlite).
    """
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, sync_session_class=TrackedSession)
