"""Faults on real servers: the app as a uvicorn subprocess, PostgreSQL and
Redis behind Toxiproxy (latency, blackholes, cut connections), a real
PostgreSQL restart, pool exhaustion, a login flood, and the commit-before-
response guarantee. Each test prints its figures (FAULT-FIGURES lines with
pytest -s, or appended to $FAULT_REPORT): latency p50/p99/max and status
counts per kind of request."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis.executor import RedisExecutor
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.api import account, create_product, login, new_user_payload, register
from tests.support.load import Recorder, repeat_until, report
from tests.support.servers import PG_CTL, PG_USER, PostgresServer, migrate, postgres_server
from tests.support.toxiproxy import Proxy, Toxiproxy, toxiproxy_server
from tests.support.uvicorn import Server, uvicorn_server

CONNECT_TIMEOUT = 1.0
# "Requests fail within connect timeout + 1 s."
FAIL_BOUND = CONNECT_TIMEOUT + 1.0
POOL_TIMEOUT = 1.0
LIVEZ_P99 = 0.2


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[Toxiproxy]:
    with toxiproxy_server() as server:
        yield server


@pytest.fixture
def pg_proxy(toxiproxy: Toxiproxy, pg_server: PostgresServer) -> Iterator[Proxy]:
    proxy = toxiproxy.proxy(f"pg-{uuid.uuid4().hex[:8]}", (pg_server.host, pg_server.port))
    yield proxy
    toxiproxy.delete(proxy)


@pytest.fixture
def redis_proxy(toxiproxy: Toxiproxy, redis_url: str, redis_proc: RedisExecutor) -> Iterator[Proxy]:
    proxy = toxiproxy.proxy(f"redis-{uuid.uuid4().hex[:8]}", (redis_proc.host, redis_proc.port))
    yield proxy
    toxiproxy.delete(proxy)


def through(url: URL, proxy: Proxy) -> str:
    host, port = proxy.address
    return url.set(host=host, port=port).render_as_string(hide_password=False)


def client_for(server: Server) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    return httpx.AsyncClient(base_url=server.base, timeout=30, limits=limits)


async def metric(http: httpx.AsyncClient, name: str) -> float:
    body = (await http.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name))


def assert_only_200_or_503(recorder: Recorder, kind: str, bound: float) -> None:
    for sample in recorder.of(kind):
        assert sample.status in (200, 503), sample
        if sample.status == 503:
            assert sample.retry_after == "1", sample
            assert sample.seconds <= bound, sample


# -- PostgreSQL: blackhole and latency (matrix row 6) ---------------------------


async def _db_fault_run(
    pg_proxy: Proxy, database_url: URL, redis_url: str, kind: str, **attributes: Any
) -> tuple[Recorder, float, float, Server]:
    env = {
        "DATABASE_URL": through(database_url, pg_proxy),
        "REDIS_URL": redis_url,
        "DB_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        "DB_POOL_SIZE": 4,
        "DB_MAX_OVERFLOW": 2,
        "DB_POOL_TIMEOUT": POOL_TIMEOUT,
    }
    recorder = Recorder()
    with uvicorn_server(env) as server:
        async with client_for(server) as http:
            user = await register(http)
            stop = asyncio.Event()
            load = asyncio.gather(
                repeat_until(stop, 0.05, lambda: recorder.request("db", http, "GET", f"/users/{user['id']}")),
                repeat_until(stop, 0.05, lambda: recorder.request("livez", http, "GET", "/livez")),
            )
            await asyncio.sleep(1.5)  # healthy traffic first: recently used connections in the pool
            fault_started = time.monotonic()
            async with pg_proxy.toxic(kind, **attributes):
                await asyncio.sleep(5)
            fault_ended = time.monotonic()
            await asyncio.sleep(4)
            stop.set()
            await load
            assert server.process.poll() is None
    return recorder, fault_started, fault_ended, server


def _check_db_fault(recorder: Recorder, started: float, ended: float, name: str) -> None:
    figures: dict[str, Any] = {
        "before": recorder.summary("db", until=started),
        "during": recorder.summary("db", since=started, until=ended),
        "after": recorder.summary("db", since=ended),
        "livez": recorder.summary("livez"),
    }
    failures = [s for s in recorder.of("db") if s.status != 200]
    first_503 = min((s.started + s.seconds for s in failures), default=None)
    figures["time_to_first_503_s"] = round(first_503 - started, 2) if first_503 else None
    recovered = [s for s in recorder.of("db", since=ended) if s.status == 200]
    figures["first_success_after_fault_s"] = round(recovered[0].started + recovered[0].seconds - ended, 2)
    report(name, figures)

    assert_only_200_or_503(recorder, "db", FAIL_BOUND)
    assert all(s.seconds <= FAIL_BOUND for s in recorder.of("db")), "a request outlived connect timeout + 1 s"
    assert figures["during"]["statuses"].get(503, 0) > 0  # the fault was felt
    livez = recorder.of("livez")
    assert {s.status for s in livez} == {200}
    assert figures["livez"]["p99_ms"] < LIVEZ_P99 * 1000
    # Recovery without a restart: the last two seconds are all 200.
    assert {s.status for s in recorder.of("db", since=ended + 2)} == {200}


async def test_blackholed_postgres_fails_fast_and_recovers(pg_proxy: Proxy, database_url: URL, redis_url: str) -> None:
    """Finding 8 / row 6: a blackhole used to hold requests 11 s (the command
    timeout). Toxiproxy's `timeout` toxic with timeout=0 drops every byte."""
    recorder, started, ended, _ = await _db_fault_run(pg_proxy, database_url, redis_url, "timeout", timeout=0)
    _check_db_fault(recorder, started, ended, "postgres-blackhole")


async def test_slow_postgres_fails_within_the_bound(pg_proxy: Proxy, database_url: URL, redis_url: str) -> None:
    """1 s of latency each way: more than the connect timeout tolerates."""
    recorder, started, ended, _ = await _db_fault_run(pg_proxy, database_url, redis_url, "latency", latency=1000)
    _check_db_fault(recorder, started, ended, "postgres-latency-1s")


async def test_a_little_postgres_latency_is_only_slower(pg_proxy: Proxy, database_url: URL, redis_url: str) -> None:
    """50 ms each way: slow statements on a live server are left alone."""
    recorder, started, ended, _ = await _db_fault_run(pg_proxy, database_url, redis_url, "latency", latency=50)
    report("postgres-latency-50ms", {"during": recorder.summary("db", since=started, until=ended)})
    assert {s.status for s in recorder.of("db")} == {200}


# -- PostgreSQL restart (matrix row 5) ------------------------------------------


@pytest.fixture
def private_pg() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test crashes it."""
    with postgres_server() as server:
        DatabaseJanitor(user=PG_USER, host=server.host, port=server.port, dbname="app").init()
        migrate(server.url("app"))
        yield server


async def test_postgres_crash_restart_is_503_then_recovers_without_restarting_the_app(
    private_pg: PostgresServer, redis_url: str
) -> None:
    env = {
        "DATABASE_URL": private_pg.url("app").render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "DB_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
    }
    recorder = Recorder()
    with uvicorn_server(env) as server:
        async with client_for(server) as http:
            pid = server.process.pid
            user = await register(http)
            stop = asyncio.Event()
            load = asyncio.gather(
                repeat_until(stop, 0.05, lambda: recorder.request("db", http, "GET", f"/users/{user['id']}")),
                repeat_until(
                    stop, 0.05, lambda: recorder.request("write", http, "POST", "/users/", json=new_user_payload())
                ),
            )
            await asyncio.sleep(1)
            crashed = time.monotonic()
            datadir = private_pg.executor.datadir
            subprocess.run([PG_CTL, "stop", "-D", str(datadir), "-m", "immediate"], check=True, capture_output=True)
            await asyncio.sleep(3)
            ready_before = time.monotonic()
            # pg_ctl start as the fixture ran it (the executor itself would wait on its first process).
            restart = private_pg.executor.command_parts
            await asyncio.to_thread(subprocess.run, restart, check=True, capture_output=True, timeout=60)
            ready = time.monotonic()
            await asyncio.sleep(6)
            stop.set()
            await load
            assert server.process.poll() is None
            assert server.process.pid == pid

    first_success = min(
        (s.started + s.seconds for s in recorder.samples if s.status in (200, 201) and s.started >= crashed + 0.5),
        default=None,
    )
    figures = {
        "db_during": recorder.summary("db", since=crashed, until=ready),
        "write_during": recorder.summary("write", since=crashed, until=ready),
        "db_after": recorder.summary("db", since=ready),
        "postgres_start_s": round(ready - ready_before, 2),
        "first_success_after_ready_s": round(first_success - ready, 2) if first_success else None,
    }
    report("postgres-crash-restart", figures)
    for sample in recorder.samples:
        assert sample.status in (200, 201, 503), sample
        if sample.status == 503:
            assert sample.retry_after == "1"
            assert sample.seconds <= 4.0
    assert first_success is not None
    assert first_success - ready <= 10
    assert {s.status for s in recorder.of("db", since=ready + 3)} == {200}


# -- Redis slow, blackholed, dead (matrix rows 7 and 8) -------------------------


async def test_redis_faults_fall_back_to_postgres_without_errors(
    redis_proxy: Proxy, database_url: URL, redis_url: str
) -> None:
    host, port = redis_proxy.address
    env = {
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": f"redis://{host}:{port}/0",
        "CACHE_BREAKER_COOLDOWN_SECONDS": 1,
    }
    with uvicorn_server(env) as server:
        async with client_for(server) as http:
            client = http
            owner = await account(client)
            product = await create_product(client, owner, name="Lamp", price="19.99")
            expected = (await client.get(f"/products/{product['id']}")).json()
            assert (await client.get(f"/products/{product['id']}")).headers["x-cache"] == "HIT"
            figures: dict[str, Any] = {}

            async def phase(name: str) -> Recorder:
                recorder = Recorder()

                async def pair() -> None:
                    cached = await recorder.request("cached", http, "GET", f"/products/{product['id']}")
                    assert cached is None or cached.status_code != 200 or cached.json() == expected
                    await recorder.request("db", http, "GET", f"/users/{owner.id}")
                    await recorder.request("readyz", http, "GET", "/readyz")

                stop = asyncio.Event()
                runner = asyncio.create_task(repeat_until(stop, 0.05, pair))
                await asyncio.sleep(3)
                stop.set()
                await runner
                figures[name] = {kind: recorder.summary(kind) for kind in ("cached", "db", "readyz")}
                for kind in ("cached", "db", "readyz"):
                    assert {s.status for s in recorder.of(kind)} == {200}, (name, kind, recorder.summary(kind))
                db_path = max(s.seconds for s in recorder.of("db"))
                worst = max(s.seconds for s in recorder.of("cached"))
                assert worst <= db_path + 0.3, (name, worst, db_path)
                return recorder

            errors_before = await metric(http, "cache_errors_total{")
            async with redis_proxy.toxic("latency", latency=2000):
                await phase("redis-slow-2s")
            async with redis_proxy.toxic("timeout", timeout=0):
                await phase("redis-blackhole")
                # Half-open: after the cool-down, ONE trial call; 20 concurrent readers skip Redis.
                await asyncio.sleep(1.1)
                before = await metric(http, "cache_errors_total{")
                burst = await asyncio.gather(*(client.get(f"/products/{product['id']}") for _ in range(20)))
                assert {r.status_code for r in burst} == {200}
                figures["half_open_errors_for_20_concurrent_reads"] = await metric(http, "cache_errors_total{") - before
                assert figures["half_open_errors_for_20_concurrent_reads"] == 1
            await redis_proxy.set_enabled(False)
            try:
                await phase("redis-dead")
            finally:
                await redis_proxy.set_enabled(True)
            figures["cache_errors_total"] = await metric(http, "cache_errors_total{") - errors_before
            assert figures["cache_errors_total"] > 0
            # Redis is back: once a trial succeeds, caching resumes.
            for _ in range(50):
                if (await client.get(f"/products/{product['id']}")).headers["x-cache"] == "HIT":
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("caching did not resume after Redis came back")
            report("redis-faults", figures)


# -- Pool exhaustion (matrix row 9) and a login flood (finding 5) ---------------


async def _server_connections(database_url: URL) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND application_name = :app")
            found = await connection.execute(query, {"db": database_url.database, "app": "storefront-api"})
            return int(found.scalar_one())
    finally:
        await engine.dispose()


async def test_pool_exhaustion_by_slow_queries_is_a_quick_503_and_nothing_leaks(
    database_url: URL, redis_url: str
) -> None:
    pool_size, overflow = 2, 1
    env = {
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "DB_POOL_SIZE": pool_size,
        "DB_MAX_OVERFLOW": overflow,
        "DB_POOL_TIMEOUT": POOL_TIMEOUT,
    }
    with uvicorn_server(env) as server:
        async with client_for(server) as http:
            client = http
            owner = await account(client)
            product = await create_product(client, owner)
            await client.get(f"/products/{product['id']}")  # cached: needs no connection
            recorder = Recorder()
            slow = [
                recorder.request("slow", http, "GET", "/_diag/slow-query", params={"seconds": 2})
                for _ in range(pool_size + overflow + 20)
            ]
            stop = asyncio.Event()
            side = asyncio.gather(
                repeat_until(stop, 0.05, lambda: recorder.request("livez", http, "GET", "/livez")),
                repeat_until(stop, 0.1, lambda: recorder.request("cached", http, "GET", f"/products/{product['id']}")),
            )  # fmt: skip
            await asyncio.gather(*slow)
            stop.set()
            await side
            await asyncio.sleep(0.5)
            checked_out = await metric(http, "db_pool_checked_out ")
            pooled = await metric(http, "db_pool_checked_in ")
            on_server = await _server_connections(database_url)

    figures: dict[str, Any] = {kind: recorder.summary(kind) for kind in ("slow", "livez", "cached")}
    figures.update(checked_out_after=checked_out, pooled_after=pooled, server_connections_after=on_server)
    report("pool-exhaustion-slow-queries", figures)
    statuses = sorted(s.status for s in recorder.of("slow"))
    assert statuses == [200] * (pool_size + overflow) + [503] * 20
    assert_only_200_or_503(recorder, "slow", POOL_TIMEOUT + 0.5)
    assert {s.status for s in recorder.of("livez")} == {200}
    assert figures["livez"]["p99_ms"] < LIVEZ_P99 * 1000
    assert {s.status for s in recorder.of("cached")} == {200}
    assert checked_out == 0
    assert on_server == pooled  # every server connection is one the pool keeps: none leaked


async def test_a_login_flood_on_a_real_server_leaves_connections_for_other_routes(
    database_url: URL, redis_url: str
) -> None:
    """Finding 5 as reported: 80 concurrent bad logins (real Argon2 cost) used
    to answer 45 of them 5xx and starve GET /users/me (503 after 2 s)."""
    env = {
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "DB_POOL_SIZE": 2,
        "DB_MAX_OVERFLOW": 0,
        "DB_POOL_TIMEOUT": POOL_TIMEOUT,
        # The production cost (~0.1 s a hash here), which is what makes logins queue.
        "PASSWORD_HASH_TIME_COST": 3,
        "PASSWORD_HASH_MEMORY_KIB": 65536,
        "PASSWORD_HASH_PARALLELISM": 4,
    }
    with uvicorn_server(env) as server:
        async with client_for(server) as http:
            me = await account(http)
            recorder = Recorder()
            wrong = {"username": me.username, "password": "wrong"}
            flood = [recorder.request("login", http, "POST", "/auth/token", data=wrong) for _ in range(80)]
            flooding = asyncio.gather(*flood)
            await asyncio.sleep(0.2)
            unrelated = [await recorder.request("me", http, "GET", "/users/me", headers=me.headers) for _ in range(5)]
            await flooding
            checked_out = await metric(http, "db_pool_checked_out ")
            good = await login(http, me.username)

    login_503 = [s.seconds for s in recorder.of("login") if s.status == 503]
    figures = {
        "login": recorder.summary("login"),
        "me_during_flood": recorder.summary("me"),
        "slowest_503_s": round(max(login_503), 3) if login_503 else None,
    }
    report("login-flood-80", figures)
    assert {s.status for s in recorder.of("login")} <= {401, 503}
    assert 0 < len(login_503) < 80  # some queued and were answered, the rest refused
    for sample in recorder.of("login"):
        if sample.status == 503:
            assert sample.retry_after == "1"
            assert sample.seconds <= POOL_TIMEOUT + 0.5
    assert [r.status_code for r in unrelated if r is not None] == [200] * 5
    assert checked_out == 0
    assert good.status_code == 200


# -- Commit before response (matrix row 4, finding 11) --------------------------

ITERATIONS = 1000
CONCURRENCY = 50


async def test_a_response_never_precedes_its_commit_on_a_real_server(database_url: URL, redis_url: str) -> None:
    """Every COMMIT is slowed by 200 ms; a second client reads the new row the
    moment the 201 arrives, 1000 times. In-process (httpx's ASGITransport) this
    could not fail: the transport returns only after the whole ASGI call,
    dependency teardown included, so a commit after the response would pass too.
    Checked: with SessionDep's scope changed to "request" (commit after the
    response), this test fails."""
    env = {
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "DB_POOL_SIZE": 30,
        "DB_MAX_OVERFLOW": 10,
        "SLOW_COMMIT_SECONDS": 0.2,
    }
    with uvicorn_server(env, app="tests.support.slow_commit_app:app") as server:
        async with client_for(server) as http:
            owner = await account(http)
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
            async with httpx.AsyncClient(base_url=server.base, timeout=30, limits=limits) as reader:
                recorder = Recorder()
                slots = asyncio.Semaphore(CONCURRENCY)
                unseen: list[int] = []

                async def iteration(n: int) -> None:
                    async with slots:
                        created = await recorder.request(
                            "create", http, "POST", "/products/",
                            json={"name": f"p{n}", "price": "1.00", "stock": 1}, headers=owner.headers,
                        )  # fmt: skip
                        assert created is not None
                        assert created.status_code == 201
                        seen = await recorder.request("read", reader, "GET", created.headers["location"])
                        if seen is None or seen.status_code != 200:
                            unseen.append(n)

                await asyncio.gather(*(iteration(n) for n in range(ITERATIONS)))
    report("commit-before-response", {kind: recorder.summary(kind) for kind in ("create", "read")})
    assert unseen == []
    assert min(s.seconds for s in recorder.of("create")) >= 0.2  # the commit really was slow
