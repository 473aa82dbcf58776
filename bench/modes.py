"""The service alone under pressure: overload against a slow database, the
pool-size sweep, and the soak (RSS over a long mixed load)."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import load
from bench.load import Fixed, Mix, Orders, RandomIds, Request, Sweep
from bench.slowdb import slow_database
from bench.stack import (
    PASSWORD,
    USERNAME,
    Catalogue,
    create_database,
    plain_dsn,
    postgres,
    redis_server,
    seed_catalogue,
    server,
    service_env,
    status_counts,
)
from bench.tools import peak_rss_mib, rss_mib
from bench.verdict import judge

# The service's pool defaults (app/platform/config.py).
POOL_SIZE = 5
POOL_OVERFLOW = 5
POOL_TIMEOUT_S = 2.0
SWEEP_POOLS = (5, 10, 20, 40)
SWEEP_CONCURRENCY = (8, 16, 32, 64, 128, 256)
RSS_GOAL_MIB = 120


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Backends:
    service_db_url: str  # through the slow proxy when there is one
    dsn: str  # direct, for seeding
    redis_url: str | None


@contextmanager
def backends(*, pin: bool, delay_ms: float, redis: bool) -> Iterator[Backends]:
    with ExitStack() as stack:
        pg = stack.enter_context(postgres(pin))
        url = create_database(pg, "bench")
        if delay_ms > 0:
            host, port = stack.enter_context(slow_database(pg.host, pg.port, delay_ms))
            url = url.replace(f"{pg.host}:{pg.port}", f"{host}:{port}")
        redis_url = stack.enter_context(redis_server(pin)) if redis else None
        yield Backends(url, plain_dsn(pg, "bench"), redis_url)


def write_results(out: Path, stem: str, payload: dict[str, Any], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(table)


def service_cases(catalogue: Catalogue) -> dict[str, load.Workload]:
    return {
        "product by id (cache off)": RandomIds("/products/", catalogue.read_ids[0], catalogue.read_ids[-1]),
        "/users/me": Fixed(Request("GET", "/users/me", catalogue.auth)),
        "list of 20": Fixed(Request("GET", "/products/?limit=20")),
        "order create": Orders(catalogue.order_ids[0], catalogue.order_ids[-1], 3, catalogue.auth),
    }


# --- overload ----------------------------------------------------------------


def overload(out: Path, meta: dict[str, Any], *, delay_ms: float, seconds: float, pin: bool) -> bool:
    """4x the pool's connections of concurrent requests against a database
    whose every reply takes `delay_ms`: each request must succeed or get a 503
    within the pool timeout + 0.5 s; none may get a 500."""
    workers = 4 * (POOL_SIZE + POOL_OVERFLOW)
    bound_ms = (POOL_TIMEOUT_S + 0.5) * 1000
    verdicts = []
    with backends(pin=pin, delay_ms=delay_ms, redis=False) as db:
        env = service_env(
            db.service_db_url,
            None,
            LOCAL_CACHE_MAX_ENTRIES="0",
            DB_POOL_SIZE=str(POOL_SIZE),
            DB_MAX_OVERFLOW=str(POOL_OVERFLOW),
            DB_POOL_TIMEOUT=str(POOL_TIMEOUT_S),
        )
        with server("service (slow database)", "app.main:app", env) as service:
            catalogue = seed_catalogue(service, db.dsn, 2_000, wait_ready=False)
            for case, workload in service_cases(catalogue).items():
                log(f"overload: {case}, {workers} concurrent requests for {seconds:.0f} s")
                with tempfile.TemporaryDirectory(prefix="bench-overload-") as workdir:
                    results = Path(workdir) / "results.bin"
                    load.vegeta_attack(
                        service.base, workload, f"overload-{case}", seconds, rate=None, workers=workers, results=results
                    )
                    verdict = judge(case, load.vegeta_outcomes(results), bound_ms)
                verdicts.append(verdict)
                log(f"  {verdict}")
    passed = all(v.passed for v in verdicts)
    header = (
        f"Overload: {workers} concurrent requests (4x pool {POOL_SIZE}+{POOL_OVERFLOW}), database replies delayed"
        f" {delay_ms:.0f} ms, pool timeout {POOL_TIMEOUT_S:.1f} s, {seconds:.0f} s per case."
        f" A 503 must come within {bound_ms / 1000:.1f} s; no 500.\n\n"
        "| case | requests | 2xx | 503 | 500/5xx | other | 2xx p50 ms | 2xx p99 ms | 2xx max ms"
        " | 503 max ms | late 503s | pass |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = "".join(
        f"| {v.case} | {v.requests} | {v.ok} | {v.unavailable} | {v.server_errors} | {v.other} | {v.ok_p50_ms}"
        f" | {v.ok_p99_ms} | {v.ok_max_ms} | {v.unavailable_max_ms} | {v.late_503s} | {'yes' if v.passed else 'NO'} |\n"
        for v in verdicts
    )
    rows += "".join(f"\n{v.case}: {v.codes}; " + "; ".join(v.details) + "\n" for v in verdicts if v.details)
    meta.update({"mode": "overload", "delay_ms": delay_ms, "seconds_per_case": seconds, "workers": workers})
    write_results(
        out, "overload", {"meta": meta, "passed": passed, "cases": [asdict(v) for v in verdicts]}, header + rows
    )
    return passed


# --- pool sweep ----------------------------------------------------------------


def sweep(out: Path, meta: dict[str, Any], *, delay_ms: float, seconds: float, pin: bool) -> bool:
    """Product by id (a database read per request) for each pool size against
    each number of concurrent connections."""
    points: list[dict[str, Any]] = []
    with backends(pin=pin, delay_ms=delay_ms, redis=False) as db:
        catalogue: Catalogue | None = None
        for pool in SWEEP_POOLS:
            env = service_env(
                db.service_db_url, None, LOCAL_CACHE_MAX_ENTRIES="0", DB_POOL_SIZE=str(pool), DB_MAX_OVERFLOW="0"
            )
            with server(f"service (pool {pool})", "app.main:app", env) as service:
                if catalogue is None:
                    catalogue = seed_catalogue(service, db.dsn, 10_000)
                workload = RandomIds("/products/", catalogue.read_ids[0], catalogue.read_ids[-1])
                load.wrk(service.base, workload, f"sweep-warm-{pool}", 2, 16)
                for concurrency in SWEEP_CONCURRENCY:
                    result = load.wrk(service.base, workload, f"sweep-{pool}-{concurrency}", seconds, concurrency)
                    points.append({"pool": pool, "concurrency": concurrency, **asdict(result)})
                    log(
                        f"pool {pool:3} x {concurrency:3} connections: {result.req_s:7.0f} req/s"
                        f" p50 {result.p50_ms:8.1f} ms p99 {result.p99_ms:8.1f} ms errors {result.errors}"
                    )
    out.mkdir(parents=True, exist_ok=True)
    _sweep_chart(points, out / "sweep.png", delay_ms)
    table = (
        f"Pool sweep: product by id with the cache off, database replies delayed {delay_ms:g} ms,"
        f" {seconds:.0f} s per point (req/s / p99 ms / errors).\n\n"
        "| pool \\ connections | " + " | ".join(map(str, SWEEP_CONCURRENCY)) + " |\n"
        "|---|" + "---:|" * len(SWEEP_CONCURRENCY) + "\n"
    )
    for pool in SWEEP_POOLS:
        cells = [f"{p['req_s']:.0f} / {p['p99_ms']:.0f} / {p['errors']}" for p in points if p["pool"] == pool]
        table += f"| {pool} | " + " | ".join(cells) + " |\n"
    meta.update({"mode": "sweep", "delay_ms": delay_ms, "seconds_per_point": seconds})
    write_results(out, "sweep", {"meta": meta, "points": points}, table)
    return True


def _sweep_chart(points: list[dict[str, Any]], path: Path, delay_ms: float) -> None:
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    for pool in SWEEP_POOLS:
        mine = [p for p in points if p["pool"] == pool]
        xs = [p["concurrency"] for p in mine]
        throughput.plot(xs, [p["req_s"] for p in mine], marker="o", label=f"pool {pool}")
        latency.plot(xs, [p["p99_ms"] for p in mine], marker="o", label=f"pool {pool}")
    for axes, label in ((throughput, "req/s"), (latency, "p99 ms")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(list(SWEEP_CONCURRENCY), [str(c) for c in SWEEP_CONCURRENCY])
        axes.set_xlabel("concurrent connections")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    latency.set_yscale("log")
    throughput.legend(fontsize=8)
    figure.suptitle(f"Product by id, cache off, database replies +{delay_ms:g} ms: pool size x concurrency")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- soak ----------------------------------------------------------------------


def soak(out: Path, meta: dict[str, Any], *, seconds: float, products: int, pin: bool) -> bool:
    """A mixed load on one worker (64 connections) plus a login a second, for
    `seconds`; RSS sampled every 5 s."""
    samples: list[tuple[float, float]] = []
    with backends(pin=pin, delay_ms=0, redis=True) as db:
        env = service_env(db.service_db_url, db.redis_url)
        with server("service", "app.main:app", env) as service:
            catalogue = seed_catalogue(service, db.dsn, products)
            low, high = catalogue.read_ids[0], catalogue.read_ids[-1]
            load.wrk(service.base, Sweep("/products/", low, high), "soak-warm", max(3, products // 1000), 64)
            mix = Mix(
                (
                    (50, RandomIds("/products/", low, high)),
                    (15, Fixed(Request("GET", "/products/?limit=20"))),
                    (20, Fixed(Request("GET", "/users/me", catalogue.auth))),
                    (15, Orders(catalogue.order_ids[0], catalogue.order_ids[-1], 3, catalogue.auth)),
                )
            )
            form = f"username={USERNAME}&password={PASSWORD.replace(' ', '+')}".encode()
            login = Fixed(Request("POST", "/auth/token", {"Content-Type": "application/x-www-form-urlencoded"}, form))
            stop = threading.Event()
            started = time.monotonic()
            samples.append((0.0, rss_mib(service.pid)))

            def sample() -> None:
                while not stop.wait(5):
                    samples.append((time.monotonic() - started, rss_mib(service.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            logins: list[load.FixedRate] = []
            login_thread = threading.Thread(
                target=lambda: logins.append(load.fixed_rate(service.base, login, "soak-login", seconds, 1.0))
            )
            login_thread.start()
            log(f"soak: {seconds:.0f} s of mixed load on one worker")
            statuses_before = status_counts(service)
            result = load.wrk(service.base, mix, "soak", seconds, 64)
            login_thread.join()
            stop.set()
            sampler.join()
            final = rss_mib(service.pid)
            peak = peak_rss_mib(service.pid)
            statuses = {
                code: n - statuses_before.get(code, 0)
                for code, n in status_counts(service).items()
                if n > statuses_before.get(code, 0)
            }
    logged_in = logins[0] if logins else None
    passed = final <= RSS_GOAL_MIB and result.errors == 0 and (logged_in is None or logged_in.errors == 0)
    _soak_chart(samples, out, seconds)
    table = (
        f"Soak: {seconds:.0f} s, 64 connections of mixed load (50% product by id, mostly cached; 15% list of 20;"
        " 20% /users/me; 15% order create) plus one login a second.\n\n"
        "| req/s | p50 ms | p99 ms | errors | logins | login errors | RSS start MiB | RSS end MiB"
        f" | peak RSS MiB | RSS <= {RSS_GOAL_MIB} MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
        f"| {result.req_s:.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.errors}"
        f" | {logged_in.requests if logged_in else 0} | {logged_in.errors if logged_in else 'n/a'}"
        f" | {samples[0][1]:.1f} | {final:.1f} | {peak:.1f} | {'yes' if final <= RSS_GOAL_MIB else 'NO'} |\n"
        f"\nResponses by status (the service's metrics): {dict(sorted(statuses.items()))}\n"
    )
    meta.update({"mode": "soak", "seconds": seconds, "products": products})
    payload = {
        "meta": meta,
        "passed": passed,
        "load": asdict(result),
        "statuses": statuses,
        "logins": asdict(logged_in) if logged_in else None,
        "rss_mib": {
            "start": samples[0][1],
            "end": final,
            "peak": peak,
            "median": statistics.median(s[1] for s in samples),
        },
        "samples": samples,
    }
    write_results(out, "soak", payload, table)
    return passed


def _soak_chart(samples: list[tuple[float, float]], out: Path, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 3.2))
    axes.plot([s[0] for s in samples], [s[1] for s in samples], marker=".")
    axes.axhline(RSS_GOAL_MIB, color="#c62828", linestyle="--", label=f"goal {RSS_GOAL_MIB} MiB")
    axes.set_xlabel("seconds")
    axes.set_ylabel("RSS MiB (one worker)")
    axes.set_ylim(0, max(RSS_GOAL_MIB * 1.2, max(s[1] for s in samples) * 1.1))
    axes.set_title(f"RSS during a {seconds:.0f} s soak", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "soak.png", dpi=110)
    plt.close(figure)
