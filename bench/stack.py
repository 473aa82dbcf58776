"""What a benchmark runs against: PostgreSQL, Redis, the service in its
configurations, the raw baseline, and the data they serve."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import port_for
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pytest_postgresql.janitor import DatabaseJanitor

from bench.tools import LOAD_CPU, REPO, SERVER_CPU, on_load_cpu, on_server_cpu, wait_for_port
from tests.support.http import serving
from tests.support.servers import PG_USER, PostgresServer, migrate, postgres_server

SECRET = "benchmark-secret-key-that-is-long-enough-0123456789abcdef"
USERNAME = "bench"
PASSWORD = "benchmark password"
# Products whose ids the "miss" service reads start here, so that their cache
# keys never meet the other products' in the shared Redis.
MISS_FIRST_ID = 10_000_001
ACCESS_TOKEN_TTL = "86400"


@dataclass(frozen=True)
class Server:
    name: str
    base: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def uvicorn_command(app: str, port: int) -> list[str]:
    """One worker, as `make run` serves (uvloop, httptools, no access log)."""
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "on", "--loop", "uvloop", "--http", "httptools",
        "--no-proxy-headers", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def server(name: str, app: str, env: dict[str, str]) -> Iterator[Server]:
    """A uvicorn worker pinned to the server core."""
    port = port_for.select_random()
    base = f"http://127.0.0.1:{port}"
    health = f"{base}/static" if app.startswith("bench.") else f"{base}/health"
    command = on_server_cpu(uvicorn_command(app, port))
    with serving(command, health, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL) as process:
        yield Server(name, base, process)


def service_env(database_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "ENVIRONMENT": "production",
        # Requests are not logged one by one (the baseline does not log either);
        # --log-level INFO measures with the access log.
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        # One client address logs in thousands of times a minute here.
        "LOGIN_RATE_LIMIT": "1000000000",
        "REGISTER_RATE_LIMIT": "1000000000",
        # Cached entries outlive the run: a "hit" case measures hits.
        "PRODUCT_CACHE_TTL_SECONDS": "86400",
        # The token issued at seeding must outlive a full run (the default is 15 minutes).
        "ACCESS_TOKEN_TTL_SECONDS": ACCESS_TOKEN_TTL,
        "DOCS_ENABLED": "false",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return {**env, **overrides}


def baseline_env(database_url: str, pool_size: int) -> dict[str, str]:
    return {
        "ACCESS_TOKEN_TTL_SECONDS": ACCESS_TOKEN_TTL,
        "BASELINE_DSN": database_url.replace("+asyncpg", ""),
        "BASELINE_POOL_SIZE": str(pool_size),
        "SECRET_KEY": SECRET,
    }


def pin_tree(pid: int, cpu: str) -> None:
    """Pins a process and its current children; later children inherit it."""
    cpus = {int(cpu)}
    os.sched_setaffinity(pid, cpus)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            with contextlib.suppress(OSError):  # it may have exited meanwhile
                os.sched_setaffinity(int(stat.parent.name), cpus)


@contextmanager
def postgres(pin: bool) -> Iterator[PostgresServer]:
    with postgres_server() as pg:
        if pin:
            postmaster = int((Path(pg.executor.datadir) / "postmaster.pid").read_text().split()[0])
            pin_tree(postmaster, LOAD_CPU)
        yield pg


def create_database(pg: PostgresServer, name: str) -> str:
    DatabaseJanitor(user=PG_USER, host=pg.host, port=pg.port, dbname=name).init()
    migrate(pg.url(name))
    return pg.url(name).render_as_string(hide_password=False)


def plain_dsn(pg: PostgresServer, name: str) -> str:
    return f"postgresql://{PG_USER}@{pg.host}:{pg.port}/{name}"


@contextmanager
def redis_server(pin: bool) -> Iterator[str]:
    port = port_for.select_random()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", workdir]
    process = subprocess.Popen(on_load_cpu(command) if pin else command, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


# --- data ------------------------------------------------------------------

_PRODUCT_COPY = "COPY products (name, description, price, stock, owner_id, created_at, updated_at) FROM STDIN"


def copy_products(connection: psycopg.Connection[tuple[object, ...]], owner_id: int, count: int, seed: int) -> range:
    """Inserts `count` products in one COPY; returns their (consecutive) ids."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with connection.transaction():
        first = connection.execute("SELECT nextval('products_id_seq')").fetchone()
        assert first is not None
        start = int(str(first[0]))
        connection.execute("SELECT setval('products_id_seq', %s, false)", (start,))
        with connection.cursor().copy(_PRODUCT_COPY) as copy:
            for n in range(count):
                created = now - timedelta(seconds=rng.uniform(60, 365 * 86_400))
                copy.write_row(
                    (
                        f"Product {start + n}",
                        f"Benchmark product {start + n}: seeded for the load test, not for sale.",
                        Decimal(rng.randint(100, 50_000)) / 100,
                        10**9,  # orders never run out
                        owner_id,
                        created,
                        created,
                    )
                )
        row = connection.execute("SELECT min(id), max(id), count(*) FROM products WHERE id >= %s", (start,)).fetchone()
    assert row is not None
    low, high, total = (int(str(v)) for v in row)
    if (low, high - low + 1) != (start, count) or total != count:
        raise RuntimeError(f"seeded ids are not consecutive: {row}")
    return range(low, high + 1)


def _until_ready(http: httpx.Client, within: float = 30) -> None:
    """Until /readyz answers 200: the database is reachable (through the slow
    proxy too) before anything is seeded."""
    deadline = time.monotonic() + within
    while (status := http.get("/readyz").status_code) != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{http.base_url} not ready after {within:.0f} s (/readyz {status})")
        time.sleep(0.2)


def _retrying_503(send: Callable[[], httpx.Response], attempts: int = 10) -> httpx.Response:
    """A setup request, sent again after a 503 (a cold pool behind the slow proxy)."""
    for _ in range(attempts - 1):
        response = send()
        if response.status_code != 503:
            break
        print(f"setup request answered 503, again: {response.text}", file=sys.stderr)
        time.sleep(1)
    else:
        response = send()
    response.raise_for_status()
    return response


@dataclass(frozen=True)
class Catalogue:
    """The main database's data: products read by id, products ordered."""

    user_id: int
    token: str
    read_ids: range
    order_ids: range

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def seed_catalogue(service: Server, dsn: str, products: int, *, wait_ready: bool = True) -> Catalogue:
    """The bench user through the API (the service hashes its password), then
    `products` products to read and as many to order, through COPY.

    `wait_ready` False: behind a very slow database /readyz (1 s timeout)
    never answers 200; setup requests then just retry their 503s."""
    with httpx.Client(base_url=service.base, timeout=60) as http:
        if wait_ready:
            _until_ready(http)
        user = {"email": "bench@example.com", "username": USERNAME, "password": PASSWORD}
        created = _retrying_503(lambda: http.post("/users/", json=user))
        login = _retrying_503(lambda: http.post("/auth/token", data={"username": USERNAME, "password": PASSWORD}))
    user_id = int(created.json()["id"])
    with psycopg.connect(dsn, autocommit=True) as connection:
        read_ids = copy_products(connection, user_id, products, seed=1)
        order_ids = copy_products(connection, user_id, products, seed=2)
        connection.execute("VACUUM ANALYZE")
    return Catalogue(user_id, login.json()["access_token"], read_ids, order_ids)


class MissCatalogue:
    """Products in the miss service's own database, added on demand so that
    each request of the miss case asks for an id nobody asked for before."""

    def __init__(self, dsn: str) -> None:
        self._connection = psycopg.connect(dsn, autocommit=True)
        row = self._connection.execute(
            "INSERT INTO users (email, username, password_hash, is_active, created_at)"
            " VALUES ('miss@example.com', 'miss', 'not-a-hash', true, now()) RETURNING id"
        ).fetchone()
        assert row is not None
        self._owner = int(str(row[0]))
        self._connection.execute("SELECT setval('products_id_seq', %s, false)", (MISS_FIRST_ID,))
        self._high = MISS_FIRST_ID - 1
        self._batches = 0

    def ensure(self, first: int, count: int) -> None:
        missing = first + count - 1 - self._high
        if missing > 0:
            self._batches += 1
            ids = copy_products(self._connection, self._owner, missing, seed=100 + self._batches)
            self._high = ids[-1]
            self._connection.execute("ANALYZE products")

    def close(self) -> None:
        self._connection.close()


# --- what the services say about themselves --------------------------------


def metric_samples(server: Server) -> Iterator[Sample]:
    """Every sample of the service's /metrics, scraped now."""
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        yield from family.samples


def cache_counts(server: Server) -> dict[str, float]:
    """The product cache's counters: hits by level, and misses."""
    counts = {"local": 0.0, "redis": 0.0, "miss": 0.0}
    for sample in metric_samples(server):
        if sample.labels.get("cache") != "product":
            continue
        if sample.name == "cache_hits_total":
            counts[sample.labels["level"]] += sample.value
        elif sample.name == "cache_misses_total":
            counts["miss"] += sample.value
    return counts


def counts_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {key: round(after[key] - before[key]) for key in after}


@contextmanager
def stack_note(message: str) -> Iterator[None]:
    print(message, file=sys.stderr, flush=True)
    started = time.monotonic()
    yield
    print(f"  ... {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def pin_note() -> str:
    return f"servers on core {SERVER_CPU}; load generator on core {LOAD_CPU}"


def status_counts(server: Server) -> dict[str, int]:
    """Responses by status code so far, from the service's own metrics."""
    counts: dict[str, int] = {}
    for sample in metric_samples(server):
        if sample.name == "http_requests_total":
            status = sample.labels["status"]
            counts[status] = counts.get(status, 0) + round(sample.value)
    return counts


def full_collections(server: Server) -> tuple[int, float]:
    """How many full garbage collections the service made so far, and their
    pauses in seconds summed (app/platform/gc_pauses.py)."""
    full = {
        sample.name: sample.value
        for sample in metric_samples(server)
        if sample.name.startswith("python_gc_pause_seconds_") and sample.labels.get("generation") == "2"
    }
    return round(full.get("python_gc_pause_seconds_count", 0)), full.get("python_gc_pause_seconds_sum", 0.0)
