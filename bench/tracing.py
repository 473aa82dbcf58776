"""Tracing overhead: the service with OpenTelemetry on (OTLP over HTTP to a
local sink, parent-based 10% sampling) against the same service with it off,
side by side on the same database, in alternating rounds. The ratio is the
median of the per-round ratios (traced req/s / untraced req/s)."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import load
from bench.modes import backends, log, service_cases, write_results
from bench.stack import seed_catalogue, server, service_env

SAMPLER = "parentbased_traceidratio"
RATIO = "0.1"
CONNECTIONS = 64


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops: the export costs the
    service what it would with a real collector, minus the network."""

    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).exports += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass(frozen=True)
class Overhead:
    case: str
    untraced_req_s: float
    traced_req_s: float
    ratio: float
    round_ratios: list[float]
    untraced_p99_ms: float
    traced_p99_ms: float
    errors: int


def tracing_overhead(out: Path, meta: dict[str, Any], *, rounds: int, seconds: float, pin: bool) -> bool:
    results = []
    with backends(pin=pin, delay_ms=0, redis=True) as db, otlp_sink() as sink:
        plain_env = service_env(db.service_db_url, db.redis_url, LOCAL_CACHE_MAX_ENTRIES="0")
        traced_env = {
            **plain_env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink,
            "OTEL_TRACES_SAMPLER": SAMPLER,
            "OTEL_TRACES_SAMPLER_ARG": RATIO,
        }
        with (
            server("service", "app.main:app", plain_env) as plain,
            server("traced", "app.main:app", traced_env) as traced,
        ):
            catalogue = seed_catalogue(plain, db.dsn, 2_000)
            for case, workload in service_cases(catalogue).items():
                runs: dict[str, list[load.Saturation]] = {"plain": [], "traced": []}
                for n in range(rounds):
                    pair = [("plain", plain), ("traced", traced)]
                    for name, target in pair if n % 2 == 0 else reversed(pair):
                        runs[name].append(load.wrk(target.base, workload, f"tracing-{name}-{n}", seconds, CONNECTIONS))
                ratios = [t.req_s / p.req_s for p, t in zip(runs["plain"], runs["traced"], strict=True)]
                result = Overhead(
                    case=case,
                    untraced_req_s=round(statistics.median(r.req_s for r in runs["plain"])),
                    traced_req_s=round(statistics.median(r.req_s for r in runs["traced"])),
                    ratio=round(statistics.median(ratios), 3),
                    round_ratios=[round(r, 3) for r in ratios],
                    untraced_p99_ms=round(statistics.median(r.p99_ms for r in runs["plain"]), 1),
                    traced_p99_ms=round(statistics.median(r.p99_ms for r in runs["traced"]), 1),
                    errors=sum(r.errors for r in runs["plain"] + runs["traced"]),
                )
                log(f"tracing: {result}")
                results.append(result)
    table = (
        f"Tracing overhead: OTLP/HTTP to a local sink, {SAMPLER} {RATIO}, {rounds} rounds x {seconds:.0f} s,"
        f" {CONNECTIONS} connections, cache off (every request reads PostgreSQL); {_Sink.exports} exports received.\n\n"
        "| case | off req/s | on req/s | ratio on/off | per round | off p99 ms | on p99 ms | errors |\n"
        "|---|---:|---:|---:|---|---:|---:|---:|\n"
        + "".join(
            f"| {r.case} | {r.untraced_req_s} | {r.traced_req_s} | {r.ratio} | {r.round_ratios}"
            f" | {r.untraced_p99_ms} | {r.traced_p99_ms} | {r.errors} |\n"
            for r in results
        )
    )
    meta.update({"mode": "tracing", "rounds": rounds, "seconds": seconds, "sampler": SAMPLER, "ratio": RATIO})
    write_results(
        out, "tracing", {"meta": meta, "exports": _Sink.exports, "cases": [asdict(r) for r in results]}, table
    )
    return _Sink.exports > 0 and all(r.errors == 0 for r in results)
