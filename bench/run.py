"""Benchmark of the service against a raw Starlette + asyncpg + orjson app
doing the same work (bench/README.md explains the method).

Modes (one per run):
  (default)   every case, service vs baseline, in alternating rounds, then
              each at 70% of its peak rate (open loop); writes
              bench/results/latest.{json,md,png} and latest-run.json
  --quick     the same, small and short: a smoke run of about a minute
  --profile   py-spy on the service under each case's load: where the time goes
  --overload  4x the pool's concurrency against a slow database: 2xx or a
              timely 503, never a 500
  --sweep     pool size against concurrency (8..256), with a slow-ish database
  --soak      mixed load for 5 minutes, RSS sampled throughout

    uv run --frozen --group bench python bench/run.py --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import compare, modes, profiling, report, tracing
from bench.tools import LOAD_CPU, REPO, SERVER_CPU, MissingTool, tool

RESULTS = REPO / "bench" / "results"


def _git_commit() -> str:
    """The last commit that changed app/ (what is measured), +dirty if it has changed since."""
    app = subprocess.run(["git", "log", "-1", "--format=%h", "--", "app"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "app"], cwd=REPO, capture_output=True, text=True)
    return app.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _machine() -> dict[str, object]:
    return {
        "load_average_at_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "server_core": SERVER_CPU,
        "load_core": LOAD_CPU,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 s, 2,000 products, no warm-up")
    mode.add_argument("--profile", action="store_true", help="profile the service under each case (py-spy)")
    mode.add_argument("--overload", action="store_true", help="4x pool concurrency against a slow database")
    mode.add_argument("--sweep", action="store_true", help="pool size x concurrency (8..256)")
    mode.add_argument("--soak", action="store_true", help="mixed load, RSS sampled (5 minutes by default)")
    mode.add_argument("--tracing", action="store_true", help="tracing on (10%% sampled) against off, side by side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--duration", type=float, help="seconds per case per round (10; overload 15 per case, sweep 5 per point)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--products", type=int, default=10_000, help="products to read, and as many to order")
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--db-delay-ms", type=float, help="added to each database reply (overload: 200, sweep: 5)")
    parser.add_argument(
        "--backends-anywhere",
        action="store_true",
        help="leave PostgreSQL and Redis unpinned (default: on the load generator's core)",
    )
    parser.add_argument(
        "--out", type=Path, help="where results go (default bench/results; bench/results/quick with --quick)"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for name in ("wrk", "vegeta", "taskset") + (("py-spy",) if args.profile else ()):
            tool(name)
    except MissingTool as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.monotonic()
    meta: dict[str, object] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": _machine(),
    }
    pin = not args.backends_anywhere
    passed = True
    if args.overload:
        delay = 200.0 if args.db_delay_ms is None else args.db_delay_ms
        passed = modes.overload(args.out, meta, delay_ms=delay, seconds=args.duration or 15, pin=pin)
    elif args.sweep:
        delay = 5.0 if args.db_delay_ms is None else args.db_delay_ms
        passed = modes.sweep(args.out, meta, delay_ms=delay, seconds=args.duration or 5, pin=pin)
    elif args.tracing:
        passed = tracing.tracing_overhead(args.out, meta, rounds=args.rounds, seconds=args.duration or 5, pin=pin)
    elif args.soak:
        passed = modes.soak(args.out, meta, seconds=args.soak_seconds, products=args.products, pin=pin)
    elif args.profile:
        profiling.profile(args.out, meta, seconds=args.duration or 10, products=args.products, pin=pin)
    else:
        quick = args.quick
        cfg = compare.Settings(
            rounds=1 if quick else args.rounds,
            duration=1 if quick else (args.duration or 10),
            connections=args.connections,
            products=2_000 if quick else args.products,
            warmup=0 if quick else 3,
            open_loop_duration=1 if quick else (args.duration or 10),
            pin_backends=pin,
        )
        result = compare.compare(cfg)
        rows = compare.summary(result)
        meta.update(
            {
                "mode": "quick" if quick else "full",
                "rounds": cfg.rounds,
                "duration_s": cfg.duration,
                "connections": cfg.connections,
                "products": cfg.products,
                "open_loop_share": compare.OPEN_LOOP_SHARE,
                "like_for_like": result.checks,
                "rss_mib": result.rss,
                "wall_seconds": round(time.monotonic() - started),
            }
        )
        title = (
            f"Storefront (app/ at {meta['commit']}) vs raw baseline: {cfg.rounds} rounds x {cfg.duration:.0f} s,"
            f" {cfg.connections} connections, one worker on one core"
        )
        paths = report.write(args.out, "latest", rows, meta, title)
        print(report.markdown(rows))
        print(f"written: {', '.join(str(p) for p in paths)}")
        passed = all(row["errors"] == 0 for row in rows)
    print(f"run time: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
