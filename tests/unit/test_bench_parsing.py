"""The benchmark's own logic that decides what a figure means: errors read
from wrk's output, the overload verdict, the profile's ranking."""

from __future__ import annotations

import re

from bench.load import Fixed, Mix, Orders, Outcome, RandomIds, Request, parse_wrk
from bench.profiling import summarise
from bench.verdict import judge

WRK_WITH_ERRORS = """Running 2s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.10ms    1.20ms  30.00ms   90.00%
  Latency Distribution
     50%    4.90ms
     75%    5.50ms
     90%    6.10ms
     99%    1.20s
  20000 requests in 2.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 120
Requests/sec:  10000.00
Transfer/sec:      1.50MB
"""


def test_wrk_error_responses_and_socket_errors_count_as_errors() -> None:
    result = parse_wrk(WRK_WITH_ERRORS)
    assert result.errors == 125
    assert result.requests == 20000
    assert result.req_s == 10000.0
    assert (result.p50_ms, result.p99_ms) == (4.9, 1200.0)


def test_a_clean_wrk_run_has_no_errors() -> None:
    clean = WRK_WITH_ERRORS.replace("  Socket errors: connect 0, read 2, write 0, timeout 3\n", "")
    assert parse_wrk(clean.replace("  Non-2xx or 3xx responses: 120\n", "")).errors == 0


def test_overload_passes_on_2xx_and_timely_503s_only() -> None:
    timely = [Outcome(200, 900.0, ""), Outcome(503, 2100.0, ""), Outcome(201, 2400.0, "")]
    assert judge("case", timely, bound_ms=2500).passed
    assert not judge("case", [*timely, Outcome(500, 10.0, "")], bound_ms=2500).passed
    late = judge("case", [*timely, Outcome(503, 2600.0, "")], bound_ms=2500)
    assert (late.passed, late.late_503s) == (False, 1)
    assert not judge("case", [*timely, Outcome(0, 30_000.0, "timeout")], bound_ms=2500).passed


def test_profile_ranks_self_time_by_the_innermost_frame() -> None:
    site = "/venv/lib/python3.11/site-packages"
    collapsed = (
        f"run (uvicorn/main.py:1);handle ({site}/fastapi/routing.py:10);execute ({site}/sqlalchemy/engine.py:5) 6\n"
        f"run (uvicorn/main.py:1);handle ({site}/fastapi/routing.py:10) 3\n"
        "run (uvicorn/main.py:1);read_me (/repo/app/users/router.py:42) 1\n"
    )
    summary = summarise(collapsed)
    assert summary["samples"] == 10
    assert summary["self_by_package"][:2] == [("sqlalchemy", 60.0), ("fastapi", 30.0)]
    assert ("fastapi", 90.0) in summary["inclusive_by_package"]
    assert ("app/users", 10.0) in summary["self_by_package"]


def test_a_mix_keeps_each_part_and_draws_by_weight() -> None:
    mix = Mix(((70, RandomIds("/products/", 1, 9)), (30, Fixed(Request("GET", "/health")))))
    script = mix.lua("t")
    assert script.count("parts[1] = function()") == script.count("parts[2] = function()") == 1
    assert "local bounds = {70, 100}" in script
    paths = [r.path for r in mix.requests(1000, "t")]
    assert 600 < sum(p.startswith("/products/") for p in paths) < 800


def test_idempotency_keys_are_unique_and_valid_whatever_the_tag() -> None:
    orders = Orders(1, 100, 3, {"Authorization": "Bearer t"})
    keys = [r.headers["Idempotency-Key"] for r in orders.requests(50, "overload-order create")]
    assert len(set(keys)) == 50
    assert all(re.fullmatch(r"[\x21-\x7e]{1,255}", key) for key in keys)
    assert 'local prefix = "overload-order-create-"' in orders.lua("overload-order create")
