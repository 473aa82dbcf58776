"""The overload rule: each request succeeds, or gets a 503 soon enough; never a 500."""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import Outcome


@dataclass(frozen=True)
class Verdict:
    case: str
    requests: int
    ok: int
    unavailable: int  # 503
    server_errors: int  # 500 and any other 5xx but 503
    other: int  # 4xx, client timeouts, connection errors
    ok_p50_ms: float
    ok_p99_ms: float
    ok_max_ms: float
    unavailable_max_ms: float
    late_503s: int  # later than the pool timeout + 0.5 s
    passed: bool


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def judge(case: str, outcomes: list[Outcome], bound_ms: float) -> Verdict:
    ok = [o.latency_ms for o in outcomes if 200 <= o.code < 300]
    busy = [o.latency_ms for o in outcomes if o.code == 503]
    server_errors = sum(1 for o in outcomes if o.code >= 500 and o.code != 503)
    other = len(outcomes) - len(ok) - len(busy) - server_errors
    late = sum(1 for latency in busy if latency > bound_ms)
    return Verdict(
        case=case,
        requests=len(outcomes),
        ok=len(ok),
        unavailable=len(busy),
        server_errors=server_errors,
        other=other,
        ok_p50_ms=round(_quantile(ok, 0.5), 1),
        ok_p99_ms=round(_quantile(ok, 0.99), 1),
        ok_max_ms=round(max(ok, default=0.0), 1),
        unavailable_max_ms=round(max(busy, default=0.0), 1),
        late_503s=late,
        passed=server_errors == 0 and other == 0 and late == 0,
    )
