"""The overload rule: each request succeeds, or gets a 503 soon enough; never a 500."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    codes: dict[str, int] = field(default_factory=dict)
    # What the answers that were not 2xx said (a few distinct ones).
    details: list[str] = field(default_factory=list)


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
    codes: dict[str, int] = {}
    details: list[str] = []
    for outcome in outcomes:
        codes[str(outcome.code)] = codes.get(str(outcome.code), 0) + 1
        if not 200 <= outcome.code < 300:
            text = outcome.error or outcome.body.decode(errors="replace")
            said = f"{outcome.code} after {outcome.latency_ms:.0f} ms: {text[:200]}"
            if len(details) < 6 and all(said.split(": ", 1)[1] != d.split(": ", 1)[1] for d in details):
                details.append(said)
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
        codes=codes,
        details=details,
    )
