"""Load generators: wrk (closed loop, at saturation) and vegeta (open loop, at
a fixed rate; or closed loop with a fixed number of workers).

A workload describes the requests once and renders them for both: as a wrk
Lua script and as vegeta JSON targets. Both count anything but a 2xx as an
error, with socket errors and timeouts (wrk counts error responses in its
req/s: its "Non-2xx" line is read here).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.tools import on_load_cpu, tool

WRK_TIMEOUT_S = 10


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _lua(value: str) -> str:
    # A JSON string is a valid Lua string literal for the ASCII we send.
    return json.dumps(value)


def _lua_headers(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()) + "}"


class Workload(Protocol):
    def lua(self, tag: str) -> str:
        """A wrk script; `tag` is unique per run (seeds, idempotency keys)."""

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        """`count` requests for vegeta, as the script would send them."""


@dataclass(frozen=True)
class Fixed:
    """The same request every time."""

    request: Request

    def lua(self, tag: str) -> str:
        r = self.request
        return (
            f"local headers = {_lua_headers(r.headers)}\n"
            f"local body = {_lua(r.body.decode()) if r.body else 'nil'}\n"
            f"request = function() return wrk.format({_lua(r.method)}, {_lua(r.path)}, headers, body) end\n"
        )

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        return itertools.repeat(self.request, count)


@dataclass(frozen=True)
class RandomIds:
    """GET {prefix}{id} for a uniformly random id in [low, high]."""

    prefix: str
    low: int
    high: int
    headers: dict[str, str] = field(default_factory=dict)

    def lua(self, tag: str) -> str:
        return (
            f"math.randomseed({_seed(tag)})\n"
            f"local headers = {_lua_headers(self.headers)}\n"
            "request = function()\n"
            f"  return wrk.format('GET', {_lua(self.prefix)} .. math.random({self.low}, {self.high}), headers)\n"
            "end\n"
        )

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        rng = random.Random(tag)
        for _ in range(count):
            yield Request("GET", f"{self.prefix}{rng.randint(self.low, self.high)}", self.headers)


@dataclass(frozen=True)
class Sweep:
    """GET {prefix}{id} for low..high in order, round and round: a run of at
    least (high - low + 1) + connections requests has asked for every id."""

    prefix: str
    low: int
    high: int

    def lua(self, tag: str) -> str:
        return (
            f"local next_id = {self.low}\n"
            "request = function()\n"
            "  local id = next_id\n"
            f"  next_id = next_id < {self.high} and next_id + 1 or {self.low}\n"
            f"  return wrk.format('GET', {_lua(self.prefix)} .. id)\n"
            "end\n"
        )

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        ids = itertools.cycle(range(self.low, self.high + 1))
        for _ in range(count):
            yield Request("GET", f"{self.prefix}{next(ids)}")


@dataclass
class FreshIds:
    """GET {prefix}{id} for ids never requested before, so that every request
    misses the cache. `ensure(n)` makes sure n more rows exist."""

    prefix: str
    next_id: int
    ensure: Callable[[int, int], None]  # (first id, count)

    def reserve(self, count: int) -> None:
        self.ensure(self.next_id, count)

    def advance(self, sent: int) -> None:
        self.next_id += sent

    def lua(self, tag: str) -> str:
        return (
            f"local next_id = {self.next_id}\n"
            "request = function()\n"
            "  local id = next_id\n"
            "  next_id = next_id + 1\n"
            f"  return wrk.format('GET', {_lua(self.prefix)} .. id)\n"
            "end\n"
        )

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        for product_id in range(self.next_id, self.next_id + count):
            yield Request("GET", f"{self.prefix}{product_id}")


@dataclass(frozen=True)
class Orders:
    """POST /orders/ for `items` distinct random products in [low, high], one
    unit each, with a new Idempotency-Key per request."""

    low: int
    high: int
    items: int
    headers: dict[str, str]

    def lua(self, tag: str) -> str:
        headers = {**self.headers, "Content-Type": "application/json"}
        return (
            f"math.randomseed({_seed(tag)})\n"
            f"local headers = {_lua_headers(headers)}\n"
            f"local prefix = {_lua(_key_prefix(tag))}\n"
            "local counter = 0\n"
            "request = function()\n"
            "  counter = counter + 1\n"
            "  local chosen, parts = {}, {}\n"
            f"  while #parts < {self.items} do\n"
            f"    local id = math.random({self.low}, {self.high})\n"
            "    if not chosen[id] then\n"
            "      chosen[id] = true\n"
            "      parts[#parts + 1] = '{\"product_id\":' .. id .. ',\"quantity\":1}'\n"
            "    end\n"
            "  end\n"
            "  headers['Idempotency-Key'] = prefix .. counter\n"
            "  return wrk.format('POST', '/orders/', headers, '{\"items\":[' .. table.concat(parts, ',') .. ']}')\n"
            "end\n"
        )

    def body(self, rng: random.Random) -> bytes:
        ids = rng.sample(range(self.low, self.high + 1), self.items)
        return json.dumps({"items": [{"product_id": i, "quantity": 1} for i in ids]}).encode()

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        rng = random.Random(tag)
        for n in range(1, count + 1):
            headers = {**self.headers, "Content-Type": "application/json", "Idempotency-Key": f"{_key_prefix(tag)}{n}"}
            yield Request("POST", "/orders/", headers, self.body(rng))


def _key_prefix(tag: str) -> str:
    """Idempotency keys are visible ASCII only: the tag, spaces replaced."""
    return re.sub(r"[^\x21-\x7e]", "-", tag) + "-"


def _seed(tag: str) -> int:
    return random.Random(tag).randint(1, 2**31 - 1)


# --- wrk -------------------------------------------------------------------


@dataclass(frozen=True)
class Saturation:
    """A closed-loop wrk run."""

    req_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> Saturation:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    latencies = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket:
        errors += sum(int(x) for x in socket.groups())
    return Saturation(
        float(rps.group(1)), latencies.get("50", 0.0), latencies.get("99", 0.0), errors, int(total.group(1))
    )


def wrk(base: str, workload: Workload, tag: str, seconds: float, connections: int) -> Saturation:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(workload.lua(tag))
        script.flush()
        command = on_load_cpu(
            [
                tool("wrk"),
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={WRK_TIMEOUT_S}s",
                "--latency",
                "-s",
                script.name,
                base,
            ]
        )
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


# --- vegeta ----------------------------------------------------------------


@dataclass(frozen=True)
class FixedRate:
    """A vegeta run: what it achieved and the latencies it saw."""

    rate: float  # requests per second sent
    req_s: float  # successful responses per second
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    requests: int
    status_codes: dict[str, int]


def _target(base: str, request: Request) -> str:
    target: dict[str, Any] = {
        "method": request.method,
        "url": base + request.path,
        "header": {k: [v] for k, v in request.headers.items()},
    }
    if request.body:
        target["body"] = base64.b64encode(request.body).decode()
    return json.dumps(target)


def target_count(rate: float, seconds: float) -> int:
    """How many targets a vegeta run at `rate` may use (it never reuses one)."""
    return int(rate * seconds * 1.2) + 100


def vegeta_attack(
    base: str,
    workload: Workload,
    tag: str,
    seconds: float,
    *,
    rate: float | None,
    workers: int,
    results: Path,
) -> None:
    """Open loop at `rate` req/s, with at most `workers` requests in flight;
    or, with rate None, closed loop with exactly `workers` in flight. Writes
    vegeta's binary results.

    The workers (one connection each) are bounded: unbounded, vegeta opens a
    burst of connections whenever the server is briefly slow, and each
    connection the server cannot accept at once costs a 1 s SYN retry."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="bench-targets-") as targets:
        for request in workload.requests(target_count(rate or 2_000, seconds), tag):
            targets.write(_target(base, request) + "\n")
        targets.flush()
        command = [
            tool("vegeta"),
            "attack",
            "-format=json",
            f"-targets={targets.name}",
            f"-duration={seconds}s",
            "-timeout=30s",
            f"-workers={workers}",
            f"-max-workers={workers}",
            f"-max-connections={workers}",
            f"-output={results}",
        ]
        command.append("-rate=0" if rate is None else f"-rate={round(rate * 1000)}/1000s")
        env = {**os.environ, "GOMAXPROCS": "1"}  # one core: the load side has one
        subprocess.run(on_load_cpu(command), check=True, env=env, stdout=subprocess.DEVNULL)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# Sent before the counted seconds of an open-loop run, while connections open.
OPEN_LOOP_WARMUP_S = 1.0


def fixed_rate(base: str, workload: Workload, tag: str, seconds: float, rate: float, *, workers: int = 64) -> FixedRate:
    """Open loop at `rate` for warmup + seconds; latencies from the requests
    sent after the warm-up (while connections open), errors from all."""
    with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as workdir:
        results = Path(workdir) / "results.bin"
        vegeta_attack(base, workload, tag, OPEN_LOOP_WARMUP_S + seconds, rate=rate, workers=workers, results=results)
        outcomes = vegeta_outcomes(results)
    first_counted = int(rate * OPEN_LOOP_WARMUP_S)
    counted = [o for o in outcomes if o.seq >= first_counted]
    ok = [o.latency_ms for o in counted if 200 <= o.code < 300]
    codes: dict[str, int] = {}
    for outcome in outcomes:
        codes[str(outcome.code)] = codes.get(str(outcome.code), 0) + 1
    return FixedRate(
        rate=len(counted) / seconds,
        req_s=len(ok) / seconds,
        p50_ms=_percentile(ok, 0.50),
        p99_ms=_percentile(ok, 0.99),
        max_ms=max(ok, default=0.0),
        errors=sum(1 for o in outcomes if not 200 <= o.code < 300),
        requests=len(outcomes),
        status_codes=codes,
    )


@dataclass(frozen=True)
class Outcome:
    """One request of a vegeta run."""

    code: int
    latency_ms: float
    error: str
    seq: int = 0
    body: bytes = b""


def vegeta_outcomes(results: Path) -> list[Outcome]:
    """Every request's status and latency (vegeta encode --to json)."""
    out = subprocess.run(
        [tool("vegeta"), "encode", "--to", "json", str(results)], capture_output=True, text=True, check=True
    ).stdout
    outcomes = []
    for line in out.splitlines():
        hit = json.loads(line)
        body = base64.b64decode(hit.get("body") or "")
        outcomes.append(Outcome(hit["code"], hit["latency"] / 1e6, hit.get("error") or "", hit.get("seq", 0), body))
    return outcomes


@dataclass(frozen=True)
class Mix:
    """Each request drawn from `parts` by weight (percentages summing to 100)."""

    parts: tuple[tuple[int, Workload], ...]

    def lua(self, tag: str) -> str:
        # Each part's script in a block of its own (its locals stay apart),
        # its request function stored in a table instead of the global.
        blocks = []
        for n, (_, part) in enumerate(self.parts, start=1):
            script = part.lua(f"{tag}-{n}").replace("request = function()", f"parts[{n}] = function()")
            blocks.append(f"do\n{script}end\n")
        bounds = list(itertools.accumulate(weight for weight, _ in self.parts))
        return (
            "local parts = {}\n"
            + "".join(blocks)
            + f"math.randomseed({_seed(tag)})\n"
            + f"local bounds = {{{', '.join(map(str, bounds))}}}\n"
            + "request = function()\n"
            + "  local r = math.random(100)\n"
            + "  for i, bound in ipairs(bounds) do\n"
            + "    if r <= bound then return parts[i]() end\n"
            + "  end\n"
            + "end\n"
        )

    def requests(self, count: int, tag: str) -> Iterator[Request]:
        rng = random.Random(tag)
        streams = [part.requests(count, f"{tag}-{n}") for n, (_, part) in enumerate(self.parts, start=1)]
        weights = [weight for weight, _ in self.parts]
        for _ in range(count):
            yield next(rng.choices(streams, weights)[0])
