"""/health, /livez, /readyz and /metrics."""

from __future__ import annotations

import gc

import httpx
from fastapi import FastAPI
from pytest_redis.executor import RedisExecutor

from app.platform.config import Settings
from app.platform.state import Platform
from tests.integration.conftest import app_client


async def test_health_and_livez(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "healthy"}
    livez = await client.get("/livez")
    assert livez.status_code == 200


async def test_readyz_reports_database_and_cache(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}


async def test_redis_down_degrades_but_stays_ready(client: httpx.AsyncClient, redis_proc: RedisExecutor) -> None:
    with redis_proc.stopped():
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["cache"] == "degraded"
        assert (await client.get("/livez")).status_code == 200
    assert (await client.get("/readyz")).json()["checks"]["cache"] == "ok"


async def test_readyz_is_503_once_shutdown_starts(client: httpx.AsyncClient, platform: Platform) -> None:
    platform.shutdown.shutting_down = True
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert (await client.get("/livez")).status_code == 200


async def test_metrics_expose_http_pool_and_loop_lag(client: httpx.AsyncClient, app: FastAPI) -> None:
    await client.get("/health")
    await client.get("/users/1")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{handler="/health",method="GET",status="200"}' in text
    assert 'handler="/users/{user_id}"' in text
    assert "http_request_duration_seconds_bucket{" in text
    for name in (
        "db_pool_size",
        "db_pool_checked_out",
        "db_pool_checked_in",
        "db_pool_overflow",
        "event_loop_lag_seconds",
    ):
        assert f"\n{name} " in text, name
    assert "process_resident_memory_bytes" in text


async def test_metrics_label_unmatched_paths_as_one_handler_and_leave_scrapes_out(client: httpx.AsyncClient) -> None:
    """A scanner's guesses must not each make a series, and scrapes are not traffic."""
    for path in ("/no/such/path/1", "/no/such/path/2"):
        assert (await client.get(path)).status_code == 404
    await client.get("/metrics")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{handler="none",method="GET",status="404"} 2.0' in text
    assert "/no/such/path" not in text
    assert 'handler="/metrics"' not in text


async def test_startup_objects_stay_out_of_collections_and_pauses_are_measured(settings: Settings) -> None:
    # A full collection over everything startup built took 60-100 ms, with
    # every request waiting (app/platform/gc_pauses.py).
    async with app_client(settings) as http:
        assert gc.get_freeze_count() > 10_000
        gc.collect()
        text = (await http.get("/metrics")).text
    assert gc.get_freeze_count() == 0  # given back at shutdown
    full = next(line for line in text.splitlines() if line.startswith('python_gc_pause_seconds_count{generation="2"}'))
    assert float(full.split()[-1]) >= 1
