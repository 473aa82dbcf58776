"""Side-by-side benchmark of the service against a raw baseline.

Method: every target runs at once, each server
pinned to core 0 and wrk to core 1; targets alternate in rounds (A B C A B C
...), and the report gives the median of the per-round ratios to the
baseline, with req/s, p50/p99, errors and RSS. Absolute numbers drift on
shared machines; the ratios are what to compare.

    uv run --group bench python bench/run.py --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import port_for
from pytest_postgresql.janitor import DatabaseJanitor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.http import serving  # noqa: E402
from tests.support.servers import PG_USER, migrate, postgres_server  # noqa: E402

SERVER_CPU = "0"
LOAD_CPU = "1"
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789abcdef"


@dataclass
class Target:
    name: str
    base: str
    process: subprocess.Popen[bytes]


@dataclass
class Case:
    name: str
    target: str
    path: str
    baseline: str | None  # case name whose req/s is the denominator
    script: str | None = None  # wrk Lua script (for POSTs and headers)


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0


@contextmanager
def server(name: str, app: str, env: dict[str, str]) -> Iterator[Target]:
    port = port_for.select_random()
    command = [
        "taskset", "-c", SERVER_CPU, sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    health = f"{base}/static" if app.startswith("bench.") else f"{base}/health"
    with serving(command, health, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL) as process:
        yield Target(name, base, process)


@contextmanager
def redis_server() -> Iterator[str]:
    port = port_for.select_random()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, duration: int, connections: int, script: str | None) -> tuple[float, float, float, int]:
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script:
        command[5:5] = ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latencies = {p: float(v) * _UNIT[u] for p, v, u in _LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return rps, latencies.get("50", 0.0), latencies.get("99", 0.0), errors


def seed(base: str) -> tuple[int, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post("/users/", json={"email": "bench@example.com", "username": "bench", "password": "benchmark password"})
        token = http.post("/auth/token", data={"username": "bench", "password": "benchmark password"}).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        product_id = 0
        for i in range(40):
            response = http.post(
                "/products/", json={"name": f"Bench item {i}", "price": "19.99", "stock": 10**9}, headers=headers
            )
            product_id = response.json()["id"]
        return product_id, token


def lua(body: str, workdir: Path, name: str) -> str:
    path = workdir / f"{name}.lua"
    path.write_text(body)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per case per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    with ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        DatabaseJanitor(user=PG_USER, host=pg.host, port=pg.port, dbname="bench").init()
        migrate(pg.url("bench"))
        redis_url = stack.enter_context(redis_server())
        database_url = pg.url("bench").render_as_string(hide_password=False)
        common = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
            "LOGIN_RATE_LIMIT": "1000000000",
            "REGISTER_RATE_LIMIT": "1000000000",
        }
        two_level = stack.enter_context(server("service (local + Redis)", "app.main:app", common))
        redis_only = stack.enter_context(
            server("service (Redis only)", "app.main:app", {**common, "LOCAL_CACHE_MAX_ENTRIES": "0"})
        )
        baseline = stack.enter_context(
            server(
                "baseline (Starlette + asyncpg)",
                "bench.baseline_app:app",
                {"BASELINE_DSN": database_url.replace("+asyncpg", "")},
            )
        )
        product_id, token = seed(two_level.base)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        auth_script = lua(f'wrk.headers["Authorization"] = "Bearer {token}"\n', workdir, "auth")
        order_script = lua(
            f'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.body = \'{{"items": [{{"product_id": {product_id}, "quantity": 1}}]}}\'\n',
            workdir,
            "order",
        )
        targets = {t.name: t for t in (two_level, redis_only, baseline)}
        cases = [
            Case("static: baseline", baseline.name, "/static", None),
            Case("static: service /health", two_level.name, "/health", "static: baseline"),
            Case("product by id: baseline (DB)", baseline.name, f"/products/{product_id}", None),
            Case(
                "product hit: local + Redis", two_level.name, f"/products/{product_id}", "product by id: baseline (DB)"
            ),
            Case("product hit: Redis only", redis_only.name, f"/products/{product_id}", "product by id: baseline (DB)"),
            Case("list of 20 (DB)", two_level.name, "/products/?limit=20", "product by id: baseline (DB)"),
            Case("users/me with JWT", two_level.name, "/users/me", "product by id: baseline (DB)", auth_script),
            Case("order create (write)", two_level.name, "/orders/", "product by id: baseline (DB)", order_script),
        ]
        results = {case.name: Result() for case in cases}
        for round_ in range(args.rounds):
            for case in cases:
                target = targets[case.target]
                rps, p50, p99, errors = run_wrk(target.base + case.path, args.duration, args.connections, case.script)
                result = results[case.name]
                result.rps.append(rps)
                result.p50_ms.append(p50)
                result.p99_ms.append(p99)
                result.errors += errors
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

        rows = []
        for case in cases:
            result = results[case.name]
            ratio = None
            if case.baseline:
                base = results[case.baseline].rps
                ratio = statistics.median(r / b for r, b in zip(result.rps, base, strict=True))
            rows.append(
                {
                    "case": case.name,
                    "req_s": round(statistics.median(result.rps)),
                    "p50_ms": round(statistics.median(result.p50_ms), 2),
                    "p99_ms": round(statistics.median(result.p99_ms), 2),
                    "errors": result.errors,
                    "ratio": None if ratio is None else round(ratio, 2),
                    "vs": case.baseline or "",
                }
            )
        print(
            f"\n{args.rounds} rounds x {args.duration} s, {args.connections} connections,"
            f" server on core {SERVER_CPU}, wrk on core {LOAD_CPU}"
        )
        print(f"{'case':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}  vs")
        for row in rows:
            ratio_text = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
            print(
                f"{row['case']:34} {row['req_s']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8}"
                f" {row['errors']:>7} {ratio_text:>6}  {row['vs']}"
            )
        print("RSS MiB: " + ", ".join(f"{t.name} {rss_mib(t.process.pid):.0f}" for t in targets.values()))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
