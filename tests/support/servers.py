"""Throwaway PostgreSQL servers on free loopback ports, for the test suites."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for
from alembic import command
from alembic.config import Config
from pytest_postgresql.executors import PostgreSQLExecutor
from sqlalchemy.engine import URL

REPO = Path(__file__).resolve().parents[2]
PG_CTL = str(Path(__file__).with_name("pg_ctl_unprivileged"))
PG_USER = "postgres"
# Durability off: these servers hold nothing worth an fsync, and the suite
# runs several times faster without them.
PG_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"


@dataclass(frozen=True)
class PostgresServer:
    executor: PostgreSQLExecutor
    host: str
    port: int

    def url(self, dbname: str) -> URL:
        return URL.create("postgresql+asyncpg", username=PG_USER, host=self.host, port=self.port, database=dbname)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    workdir = Path(tempfile.mkdtemp(prefix="storefront-pg-"))
    if os.geteuid() == 0:
        # The server runs as `postgres` (see pg_ctl_unprivileged): it must own its directory.
        entry = pwd.getpwnam(PG_USER)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    port = port_for.select_random()
    executor = PostgreSQLExecutor(
        executable=PG_CTL,
        host="127.0.0.1",
        port=port,
        datadir=str(workdir / "data"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "postgresql.log"),
        startparams="-w",
        dbname="storefront",
        user=PG_USER,
        postgres_options=PG_OPTIONS,
    )
    try:
        executor.start()
        yield PostgresServer(executor=executor, host="127.0.0.1", port=port)
    finally:
        if executor.running():
            executor.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def migrate(url: URL | str) -> None:
    """`alembic upgrade head`, as `make migrate` runs it."""
    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url if isinstance(url, URL) else None
    config.attributes["skip_logging_config"] = True
    command.upgrade(config, "head")
