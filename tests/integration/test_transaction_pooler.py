"""DB_TRANSACTION_POOLER: the settings the API needs behind PgBouncer in
transaction mode (the chart's cloudnativepg mode), on a real PostgreSQL.

PgBouncer refuses a statement_timeout startup parameter, and a session-level
SET would stay on the server connection for the next client: the timeout is
set per transaction instead. The PgBouncer path itself (and prepared
statements through it under load) runs in the cluster tier, tests/e2e/cnpg.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.platform.state import Platform


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"db_transaction_pooler": True, "db_statement_timeout_ms": 300}


async def test_the_timeout_applies_to_each_transaction_not_the_session(platform: Platform) -> None:
    async with platform.engine.connect() as connection:
        in_transaction = (await connection.execute(text("SELECT current_setting('statement_timeout')"))).scalar_one()
        await connection.commit()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        # Outside any transaction: the server's default, nothing left behind
        # for whoever gets this server connection next.
        session_level = await driver.fetchval("SELECT current_setting('statement_timeout')")
    assert in_transaction == "300ms"
    assert session_level == "0"


async def test_a_statement_past_the_timeout_is_cancelled(platform: Platform) -> None:
    async with platform.engine.connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            await connection.execute(text("SELECT pg_sleep(2)"))
    assert getattr(raised.value.orig, "sqlstate", None) == "57014"  # query_canceled


async def test_application_name_still_reaches_the_server(platform: Platform) -> None:
    async with platform.engine.connect() as connection:
        name = (await connection.execute(text("SELECT current_setting('application_name')"))).scalar_one()
    assert name == "storefront-api"
