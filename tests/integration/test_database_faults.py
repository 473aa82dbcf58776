"""Database connection settings. The faults themselves (pool exhaustion, a
blackhole, latency, a crash-restart) run against a real uvicorn server in
tests/integration/test_faults.py."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from app.platform.state import Platform


async def test_connections_carry_the_application_name(client: httpx.AsyncClient, platform: Platform) -> None:
    """Operators count the API's connections in pg_stat_activity by this name."""
    async with platform.engine.connect() as connection:
        name = (await connection.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        timeout = (await connection.execute(text("SELECT current_setting('statement_timeout')"))).scalar_one()
    assert name == "storefront-api"
    assert timeout == "10s"
