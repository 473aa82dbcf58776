"""The open-loop p50 / p99 of the cached hit and /users/me at fixed rates,
each rate twice, on the bench's own set-up (the service pinned to core 0,
vegeta to core 1): how stable the "at 70% of peak" figure of `make bench`
is near the service's open-loop capacity (bench/README.md). Each line also
gives the full garbage collections during the run and their mean pause, and
for the hit, the reads that went on to Redis (in-process entries expired).

    uv run --frozen --group bench python bench/open_loop_rates.py \\
        --hit 2000 2880 3395 --me 650 948
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import compare, load
from bench.stack import cache_counts, counts_delta, full_collections

SECONDS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hit", type=float, nargs="+", default=[2000, 2880, 3395], help="cached hit rates, req/s")
    parser.add_argument("--me", type=float, nargs="+", default=[650, 948], help="/users/me rates, req/s")
    args = parser.parse_args()
    cfg = compare.Settings(
        rounds=0, duration=5, connections=64, products=10_000, warmup=3, open_loop_duration=0, pin_backends=True
    )
    with compare.environment(cfg) as env:
        for key, rates in (("svc-hit", args.hit), ("svc-me", args.me)):
            run = env.runs[key]
            compare.measure(run, f"rates-warm-{key}", 3)
            for attempt in (1, 2):
                for rate in rates:
                    if run.before is not None:
                        run.before(run)  # the hit case warms every id again
                    (count_before, paused_before), cache = full_collections(run.server), cache_counts(run.server)
                    r = load.fixed_rate(run.server.base, run.workload, f"rates-{key}-{rate}-{attempt}", SECONDS, rate)
                    count, paused = full_collections(run.server)
                    count, paused = count - count_before, paused - paused_before
                    redis = counts_delta(cache, cache_counts(run.server))["redis"]
                    print(
                        f"{run.label}: asked {rate:.0f}/s, sent {r.rate:.0f}/s, p50 {r.p50_ms:.2f} ms,"
                        f" p99 {r.p99_ms:.2f} ms, max {r.max_ms:.1f} ms, errors {r.errors};"
                        f" full collections {count:.0f}, mean {paused / max(count, 1) * 1000:.1f} ms;"
                        f" Redis reads {redis}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
