"""The side-by-side comparison: every case of the service against the raw
baseline doing the same work, in alternating rounds, then each at 70% of its
peak rate."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from bench import load
from bench.load import FixedRate, FreshIds, Orders, RandomIds, Request, Saturation, Sweep, Workload
from bench.stack import (
    MISS_FIRST_ID,
    PASSWORD,
    USERNAME,
    Catalogue,
    MissCatalogue,
    Server,
    baseline_env,
    cache_counts,
    counts_delta,
    create_database,
    plain_dsn,
    postgres,
    redis_server,
    seed_catalogue,
    server,
    service_env,
    status_counts,
)
from bench.tools import LOAD_CPU, SERVER_CPU, busy_share, cpu_times, peak_rss_mib, process_cpu_seconds, rss_mib

# The service's pool (DB_POOL_SIZE 5 + DB_MAX_OVERFLOW 5): the baseline gets as many connections.
POOL_CONNECTIONS = 10
ORDER_ITEMS = 3
# Logins spend ~0.1 s of CPU each in Argon2id, two at a time: a few
# connections saturate them, and 64 would only queue past wrk's timeout.
LOGIN_CONNECTIONS = 4
OPEN_LOOP_SHARE = 0.7


@dataclass(frozen=True)
class Settings:
    rounds: int
    duration: float
    connections: int
    products: int
    warmup: float
    open_loop_duration: float
    pin_backends: bool


@dataclass
class Run:
    """One thing wrk measures: a workload against a server."""

    key: str
    label: str
    server: Server
    workload: Workload
    connections: int
    cache_of: Server | None = None  # whose product-cache counters explain the run
    before: Callable[[Run], None] | None = None
    fresh: FreshIds | None = None
    # vegeta, on one core, cannot send 70% of a static route's peak.
    open_loop_wanted: bool = True
    results: list[Saturation] = field(default_factory=list)
    # Per round: the server process's CPU (cores), and how busy each core was.
    cpu: list[tuple[float, float, float]] = field(default_factory=list)
    cache: list[dict[str, int]] = field(default_factory=list)
    # Responses other than 2xx, by status, from the service's own metrics.
    non_2xx: dict[str, int] = field(default_factory=dict)
    open_loop: FixedRate | None = None
    open_loop_target: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    run: str
    vs: str | None
    goal: float | None = None
    note: str = ""


CASES = [
    Case("static JSON (/health)", "svc-health", "raw-static", note="framework floor, no I/O"),
    Case("product by id, DB (cache off)", "svc-by-id", "raw-by-id", 0.5, "random id among the catalogue"),
    Case("product by id, cached hit", "svc-hit", "raw-by-id", 0.9, "local level warm; vs the raw DB read"),
    Case("product by id, cache miss", "svc-miss", "raw-by-id", None, "every id asked for the first time"),
    Case("/users/me (JWT + one row)", "svc-me", "raw-me", 0.5),
    Case("list of 20 with count", "svc-list", "raw-list", 0.4),
    Case("order create (3 random products)", "svc-order", "raw-order", 0.3, "one transaction"),
    Case("logins/s (Argon2id)", "svc-login", "raw-login", None, f"{LOGIN_CONNECTIONS} connections"),
    Case("raw: static JSON", "raw-static", None),
    Case("raw: product by id", "raw-by-id", None),
    Case("raw: /users/me", "raw-me", None),
    Case("raw: list of 20 with count", "raw-list", None),
    Case("raw: order create", "raw-order", None),
    Case("raw: logins/s", "raw-login", None),
]
# Measured back to back in each round; the order within a group alternates.
GROUPS = [
    ["raw-static", "svc-health"],
    ["raw-by-id", "svc-by-id", "svc-hit", "svc-miss"],
    ["raw-me", "svc-me"],
    ["raw-list", "svc-list"],
    ["raw-order", "svc-order"],
    ["raw-login", "svc-login"],
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warm_every_id(run: Run) -> None:
    """Asks for every id of the hit case in order, until each was asked once
    (each hit round then reads the in-process level, whose entries live 60 s)."""
    workload = run.workload
    assert isinstance(workload, RandomIds)
    sweep = Sweep(workload.prefix, workload.low, workload.high)
    needed = workload.high - workload.low + 1 + 2 * run.connections
    seconds = max(1.0, needed / 3_000)  # a first guess; the loop corrects it
    for _ in range(5):
        done = load.wrk(run.server.base, sweep, "warm", seconds, run.connections)
        if done.requests >= needed:
            return
        seconds = math.ceil(needed / max(done.req_s, 1.0) * 1.3) + 1
    raise RuntimeError("could not warm the cache: the service is too slow")


def measure(run: Run, tag: str, seconds: float) -> Saturation:
    if run.before is not None:
        run.before(run)
    if run.fresh is not None:
        expected = max((r.req_s for r in run.results), default=5_000.0)
        run.fresh.reserve(int(expected * seconds * 2) + 2 * run.connections)
    counts = cache_counts(run.cache_of) if run.cache_of else None
    statuses = status_counts(run.server) if run.key.startswith("svc-") else None
    cpu_before, process_before, wall_before = cpu_times(), process_cpu_seconds(run.server.pid), time.monotonic()
    result = load.wrk(run.server.base, run.workload, tag, seconds, run.connections)
    cpu_after, process_after, wall_after = cpu_times(), process_cpu_seconds(run.server.pid), time.monotonic()
    if run.fresh is not None:
        run.fresh.advance(result.requests + 2 * run.connections)
    if run.cache_of and counts is not None:
        run.cache.append(counts_delta(counts, cache_counts(run.cache_of)))
    if statuses is not None:
        for code, n in status_counts(run.server).items():
            if not code.startswith("2") and n > statuses.get(code, 0):
                run.non_2xx[code] = run.non_2xx.get(code, 0) + n - statuses.get(code, 0)
    run.cpu.append(
        (
            (process_after - process_before) / (wall_after - wall_before),
            busy_share(cpu_before, cpu_after, SERVER_CPU),
            busy_share(cpu_before, cpu_after, LOAD_CPU),
        )
    )
    return result


def at_fixed_rate(run: Run, tag: str, seconds: float) -> FixedRate:
    rate = OPEN_LOOP_SHARE * statistics.median(r.req_s for r in run.results)
    run.open_loop_target = rate
    if run.before is not None:
        run.before(run)
    if run.fresh is None:
        return load.fixed_rate(run.server.base, run.workload, tag, seconds, rate)
    count = load.target_count(rate, load.OPEN_LOOP_WARMUP_S + seconds)
    run.fresh.reserve(count)
    result = load.fixed_rate(run.server.base, run.fresh, tag, seconds, rate)
    run.fresh.advance(count)
    return result


def check_like_for_like(catalogue: Catalogue, servers: dict[str, Server]) -> list[str]:
    """The baseline must return the service's bytes: compared before measuring."""
    raw, uncached, cached = servers["raw"], servers["nocache"], servers["main"]
    notes = []
    with httpx.Client(timeout=30) as http:

        def same(path: str, *others: Server, headers: dict[str, str] | None = None) -> None:
            expected = http.get(raw.base + path, headers=headers)
            expected.raise_for_status()
            for other in others:
                got = http.get(other.base + path, headers=headers)
                if got.status_code != 200 or got.content != expected.content:
                    raise RuntimeError(f"{other.name} and the baseline differ on {path}:\n{got.text}\n{expected.text}")

        ids = [catalogue.read_ids[0], catalogue.read_ids[-1], *catalogue.read_ids[1 : len(catalogue.read_ids) : 997]]
        for product_id in ids:
            same(f"/products/{product_id}", uncached, cached)
        notes.append(f"GET /products/{{id}}: same bytes for {len(ids)} ids")
        same("/products/?limit=20", cached)
        notes.append("GET /products/?limit=20: same bytes")
        same("/users/me", cached, headers=catalogue.auth)
        notes.append("GET /users/me: same bytes")

        order = {"items": [{"product_id": i, "quantity": 1} for i in catalogue.order_ids[:ORDER_ITEMS]]}
        bodies = []
        for target in (raw, cached):
            response = http.post(
                target.base + "/orders/",
                json=order,
                headers={**catalogue.auth, "Idempotency-Key": f"check-{target.name}"},
            )
            if response.status_code != 201:
                raise RuntimeError(f"{target.name}: order create answered {response.status_code}: {response.text}")
            bodies.append({**response.json(), "id": 0, "created_at": ""})
        if bodies[0] != bodies[1]:
            raise RuntimeError(f"order bodies differ beyond id and created_at:\n{bodies}")
        notes.append("POST /orders/: same body but for id and created_at")

        logins = []
        for target in (raw, cached):
            response = http.post(target.base + "/auth/token", data={"username": USERNAME, "password": PASSWORD})
            response.raise_for_status()
            logins.append({k: v for k, v in response.json().items() if not k.endswith("_token")})
        if logins[0] != logins[1]:
            raise RuntimeError(f"login bodies differ beyond the tokens:\n{logins}")
        notes.append("POST /auth/token: same body but for the tokens")
    return notes


def build_runs(catalogue: Catalogue, servers: dict[str, Server], miss: MissCatalogue, cfg: Settings) -> dict[str, Run]:
    raw, main, uncached = servers["raw"], servers["main"], servers["nocache"]
    c = cfg.connections
    read = RandomIds("/products/", catalogue.read_ids[0], catalogue.read_ids[-1])
    me = load.Fixed(Request("GET", "/users/me", catalogue.auth))
    page = load.Fixed(Request("GET", "/products/?limit=20"))
    orders = Orders(catalogue.order_ids[0], catalogue.order_ids[-1], ORDER_ITEMS, catalogue.auth)
    form = f"username={USERNAME}&password={PASSWORD.replace(' ', '+')}".encode()
    login = load.Fixed(Request("POST", "/auth/token", {"Content-Type": "application/x-www-form-urlencoded"}, form))
    fresh = FreshIds("/products/", MISS_FIRST_ID, miss.ensure)
    runs = [
        Run("raw-static", "raw: static", raw, load.Fixed(Request("GET", "/static")), c, open_loop_wanted=False),
        Run("svc-health", "service: /health", main, load.Fixed(Request("GET", "/health")), c, open_loop_wanted=False),
        Run("raw-by-id", "raw: product by id", raw, read, c),
        Run("svc-by-id", "service (cache off): product by id", uncached, read, c),
        Run("svc-hit", "service: cached hit", main, read, c, cache_of=main, before=warm_every_id),
        Run("svc-miss", "service: cache miss", servers["miss"], fresh, c, cache_of=servers["miss"], fresh=fresh),
        Run("raw-me", "raw: /users/me", raw, me, c),
        Run("svc-me", "service: /users/me", main, me, c),
        Run("raw-list", "raw: list of 20", raw, page, c),
        Run("svc-list", "service: list of 20", main, page, c),
        Run("raw-order", "raw: order create", raw, orders, c),
        Run("svc-order", "service: order create", main, orders, c),
        Run("raw-login", "raw: login", raw, login, LOGIN_CONNECTIONS),
        Run("svc-login", "service: login", main, login, LOGIN_CONNECTIONS),
    ]
    return {run.key: run for run in runs}


def round_order(round_: int) -> Iterator[str]:
    for group in GROUPS:
        yield from (group if round_ % 2 == 0 else reversed(group))


@dataclass
class Comparison:
    cfg: Settings
    runs: dict[str, Run]
    checks: list[str]
    rss: dict[str, dict[str, float]]
    seconds: float


@dataclass(frozen=True)
class Environment:
    servers: dict[str, Server]
    runs: dict[str, Run]
    checks: list[str]
    dsn: str

    def vacuum(self) -> None:
        """Orders update product rows: without a vacuum between rounds, the
        dead row versions they leave make each round's list count slower."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE products")


@contextmanager
def environment(cfg: Settings) -> Iterator[Environment]:
    """PostgreSQL, Redis, the three service configurations and the baseline,
    seeded and checked like for like."""
    with ExitStack() as stack:
        log("starting PostgreSQL and Redis")
        pg = stack.enter_context(postgres(cfg.pin_backends))
        main_url = create_database(pg, "bench")
        miss_url = create_database(pg, "bench_miss")
        redis_url = stack.enter_context(redis_server(cfg.pin_backends))
        log("starting the service (3 configurations) and the baseline")
        servers = {
            "main": stack.enter_context(server("service", "app.main:app", service_env(main_url, redis_url))),
            "nocache": stack.enter_context(
                server("service (cache off)", "app.main:app", service_env(main_url, None, LOCAL_CACHE_MAX_ENTRIES="0"))
            ),
            "miss": stack.enter_context(server("service (miss)", "app.main:app", service_env(miss_url, redis_url))),
            "raw": stack.enter_context(
                server("baseline", "bench.baseline_app:app", baseline_env(main_url, POOL_CONNECTIONS))
            ),
        }
        log(f"seeding {cfg.products} products to read and {cfg.products} to order")
        catalogue = seed_catalogue(servers["main"], plain_dsn(pg, "bench"), cfg.products)
        miss = MissCatalogue(plain_dsn(pg, "bench_miss"))
        stack.callback(miss.close)
        checks = check_like_for_like(catalogue, servers)
        for note in checks:
            log(f"  like for like: {note}")
        yield Environment(servers, build_runs(catalogue, servers, miss, cfg), checks, plain_dsn(pg, "bench"))


def compare(cfg: Settings) -> Comparison:
    started = time.monotonic()
    with environment(cfg) as env:
        runs = env.runs
        log(f"warm-up: {cfg.warmup:.0f} s per run")
        for key in round_order(0) if cfg.warmup > 0 else ():
            measure(runs[key], f"warmup-{key}", cfg.warmup)
        for run in runs.values():
            run.results.clear()
            run.cpu.clear()
            run.cache.clear()

        for round_ in range(cfg.rounds):
            env.vacuum()
            for key in round_order(round_):
                run = runs[key]
                result = measure(run, f"r{round_}-{key}", cfg.duration)
                run.results.append(result)
                log(
                    f"round {round_ + 1}/{cfg.rounds} {run.label:38} {result.req_s:9.0f} req/s"
                    f" p99 {result.p99_ms:8.2f} ms errors {result.errors}"
                )

        log(f"open loop at {OPEN_LOOP_SHARE:.0%} of each peak, {cfg.open_loop_duration:.0f} s each")
        env.vacuum()
        for key in round_order(0):
            run = runs[key]
            if not run.open_loop_wanted:
                continue
            run.open_loop = at_fixed_rate(run, f"open-{key}", cfg.open_loop_duration)
            ol = run.open_loop
            log(f"  {run.label:38} {ol.rate:8.0f}/s p50 {ol.p50_ms:7.2f} ms p99 {ol.p99_ms:8.2f} ms errors {ol.errors}")

        rss = {
            s.name: {"rss_mib": round(rss_mib(s.pid), 1), "peak_rss_mib": round(peak_rss_mib(s.pid), 1)}
            for s in env.servers.values()
        }
    return Comparison(cfg, runs, env.checks, rss, time.monotonic() - started)


def summary(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per case (see bench/README.md for the fields)."""
    runs = comparison.runs
    rows = []
    for case in CASES:
        run = runs[case.run]
        ratios = [r.req_s / b.req_s for r, b in zip(run.results, runs[case.vs].results, strict=True)] if case.vs else []
        ratio = statistics.median(ratios) if ratios else None
        ol = run.open_loop
        row: dict[str, Any] = {
            "case": case.name,
            "req_s": round(statistics.median(r.req_s for r in run.results)),
            "p50_ms": round(statistics.median(r.p50_ms for r in run.results), 2),
            "p99_ms": round(statistics.median(r.p99_ms for r in run.results), 2),
            "errors": sum(r.errors for r in run.results) + (ol.errors if ol else 0),
            "ratio": None if ratio is None else round(ratio, 3),
            "vs": next((c.name for c in CASES if c.run == case.vs and c.vs is None), "") if case.vs else "",
            "goal": case.goal,
            "round_ratios": [round(r, 3) for r in ratios],
            "round_req_s": [round(r.req_s) for r in run.results],
            "connections": run.connections,
            "open_loop_target_rate": round(run.open_loop_target, 1) if ol else None,
            "open_loop_rate": round(ol.rate, 1) if ol else None,
            "open_loop_p50_ms": round(ol.p50_ms, 2) if ol else None,
            "open_loop_p99_ms": round(ol.p99_ms, 2) if ol else None,
            "open_loop_errors": ol.errors if ol else None,
            "server_cpu": round(statistics.median(c[0] for c in run.cpu), 2),
            "server_core_busy": round(statistics.median(c[1] for c in run.cpu), 2),
            "load_core_busy": round(statistics.median(c[2] for c in run.cpu), 2),
            "rss_mib": comparison.rss[run.server.name]["rss_mib"],
            "non_2xx": run.non_2xx if run.key.startswith("svc-") else None,
            "note": case.note,
        }
        if run.cache:
            totals = {k: sum(c[k] for c in run.cache) for k in run.cache[0]}
            row["cache"] = totals
        rows.append(row)
    return rows
