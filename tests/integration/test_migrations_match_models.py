"""The migrations build exactly the schema the models declare: no table,
column, index, constraint or type drifts between the two."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from app import models  # noqa: F401  (every table on the metadata)
from app.ops.schema import HISTORY_TABLE
from app.platform.database import Base


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    # The migrations' own record of applied revisions is not a model.
    return [d for d in compare_metadata(context, Base.metadata) if not _is_history_table(d)]


def _is_history_table(difference: Any) -> bool:
    return bool(difference[0] == "remove_table" and difference[1].name == HISTORY_TABLE.name)


async def test_migrated_schema_equals_the_models(database_url: URL) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []
