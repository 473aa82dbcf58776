"""Is the database at a schema this code can serve? (`python -m app.ops.schema wait`)

API pods run `wait` in an init container: they do not start, let alone turn
ready, before the migration Job has brought the schema to the revision their
own code expects. Old pods keep serving meanwhile (expand/contract).

Accepted: the head revision of this code, or a revision the migrations
recorded as descending from it. The second case is a rollback: the release
rolled back from migrated to a newer revision that this (older) code does not
know, and expand/contract promises the older code works on it. Its script
files are gone with the release, so "known" cannot mean "in our migrations":
it means recorded in `alembic_revision_history` (written by migrations/env.py
for every revision applied, with its down revisions) on a path that leads
down to our head. Anything else (an older revision, a revision on another
branch, one with no record) keeps the pod waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, DateTime, MetaData, Row, String, Table, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.platform.config import DatabaseSettings

log = logging.getLogger("storefront.migrations")
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
# A longer history than any real chain of releases: the walk stops there.
MAX_ANCESTRY = 10_000

# Written by migrations/env.py; not one of the models (autogenerate skips it).
HISTORY_TABLE = Table(
    "alembic_revision_history",
    MetaData(),
    Column("revision", String(64), primary_key=True),
    Column("down_revisions", String(512), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        try:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None  # no alembic_version table yet: nothing migrated
        return result.scalar_one_or_none()


def recorded_parents(rows: Iterable[Row[str, str]]) -> dict[str, list[str]]:
    """The history table's rows as revision -> its down revisions."""
    return {row.revision: [down for down in row.down_revisions.split(",") if down] for row in rows}


def leads_down_to(parents: Mapping[str, list[str]], revision: str, ancestor: str) -> bool:
    """Whether the recorded history leads from `revision` down to `ancestor`."""
    seen: set[str] = set()
    pending = [revision]
    while pending and len(seen) < MAX_ANCESTRY:
        current = pending.pop()
        if current == ancestor:
            return True
        if current not in seen:
            seen.add(current)
            pending.extend(parents.get(current, []))
    return False


async def descends_from(connection: AsyncConnection, revision: str, ancestor: str) -> bool:
    """Whether the recorded history leads from `revision` down to `ancestor`."""
    try:
        rows = (await connection.execute(select(HISTORY_TABLE.c.revision, HISTORY_TABLE.c.down_revisions))).all()
    except DBAPIError:
        return False  # no history recorded (yet)
    return leads_down_to(recorded_parents(rows), revision, ancestor)


async def serves(engine: AsyncEngine, head: str | None) -> tuple[str | None, bool]:
    """(the database's revision, whether this code can serve it)."""
    current = await current_revision(engine)
    if current == head:
        return current, True
    if current is None or head is None:
        return current, False
    async with engine.connect() as connection:
        return current, await descends_from(connection, current, head)


async def _poll_until_served(engine: AsyncEngine, head: str | None, interval: float) -> None:
    while True:
        try:
            current, ok = await serves(engine, head)
        except (DBAPIError, OSError) as exc:  # TimeoutError is an OSError
            current, ok = None, False
            log.info("database not reachable yet (%s)", type(exc).__name__)
        if ok:
            if current == head:
                log.info("schema is at head %s", head)
            else:
                log.info("schema is at %s, a newer revision recorded as descending from our head %s", current, head)
            return
        log.info("waiting for migrations: schema at %s, expected %s or a recorded descendant", current, head)
        await asyncio.sleep(interval)


async def wait_for_head(settings: DatabaseSettings, within: float, interval: float = 2.0) -> bool:
    """True once the database is at this code's head revision, or at a newer one
    recorded as descending from it; False after `within` seconds."""
    engine = create_async_engine(
        settings.sqlalchemy_url, poolclass=NullPool, connect_args={"timeout": settings.db_connect_timeout}
    )
    try:
        async with asyncio.timeout(within):
            await _poll_until_served(engine, head_revision(), interval)
    except TimeoutError:
        log.error("the schema did not reach head within %s s", within)
        return False
    finally:
        await engine.dispose()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.schema")
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser(
        "wait", help="wait until the database is at the migrations' head (or a recorded descendant)"
    )
    wait.add_argument("--timeout", type=float, default=600)
    commands.add_parser("head", help="print the head revision of this code")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "head":
        print(head_revision())
        return 0
    return 0 if asyncio.run(wait_for_head(DatabaseSettings(), within=args.timeout)) else 1


if __name__ == "__main__":
    sys.exit(main())
