"""Is the database at the migrations' head? (`python -m app.ops.schema wait`)

API pods run `wait` in an init container: they do not start, let alone turn
ready, before the migration Job has brought the schema to the revision their
own code expects. Old pods keep serving meanwhile (expand/contract).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.platform.config import DatabaseSettings

log = logging.getLogger("storefront.migrations")
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def head_revision() -> str | None:
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        try:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None  # no alembic_version table yet: nothing migrated
        return result.scalar_one_or_none()


async def _poll_until_head(engine: AsyncEngine, head: str | None, interval: float) -> None:
    while True:
        try:
            current = await current_revision(engine)
        except (DBAPIError, OSError) as exc:  # TimeoutError is an OSError
            current = None
            log.info("database not reachable yet (%s)", type(exc).__name__)
        if current == head:
            log.info("schema is at head %s", head)
            return
        log.info("waiting for migrations: schema at %s, expected %s", current, head)
        await asyncio.sleep(interval)


async def wait_for_head(settings: DatabaseSettings, within: float, interval: float = 2.0) -> bool:
    """True once the database is at this code's head revision; False after `within` seconds."""
    engine = create_async_engine(
        settings.sqlalchemy_url, poolclass=NullPool, connect_args={"timeout": settings.db_connect_timeout}
    )
    try:
        async with asyncio.timeout(within):
            await _poll_until_head(engine, head_revision(), interval)
    except TimeoutError:
        log.error("the schema did not reach head within %s s", within)
        return False
    finally:
        await engine.dispose()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.schema")
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser("wait", help="wait until the database is at the migrations' head")
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
