"""Timed requests and the figures the fault tests report: latency
percentiles and status counts per kind of request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TRANSPORT_ERROR = 0  # status recorded when no response arrived


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int
    seconds: float
    started: float
    retry_after: str | None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)

    async def request(
        self, kind: str, http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError:
            self.samples.append(Sample(kind, TRANSPORT_ERROR, time.monotonic() - started, started, None))
            return None
        seconds = time.monotonic() - started
        self.samples.append(Sample(kind, response.status_code, seconds, started, response.headers.get("retry-after")))
        return response

    def of(self, kind: str, since: float = 0.0, until: float = math.inf) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind and since <= s.started < until]

    def summary(self, kind: str, since: float = 0.0, until: float = math.inf) -> dict[str, Any]:
        samples = self.of(kind, since, until)
        if not samples:
            return {"count": 0}
        latencies = [s.seconds for s in samples]
        return {
            "count": len(samples),
            "statuses": dict(sorted(Counter(s.status for s in samples).items())),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1),
        }


def report(name: str, figures: dict[str, Any]) -> None:
    """Prints the figures (pytest -s shows them) and appends them to
    $FAULT_REPORT when set, one JSON line per test."""
    line = json.dumps({"test": name, **figures})
    print(f"\nFAULT-FIGURES {line}")
    if path := os.environ.get("FAULT_REPORT"):
        with Path(path).open("a") as out:
            out.write(line + "\n")


async def repeat_until(stop: asyncio.Event, interval: float, action: Callable[[], Awaitable[object]]) -> None:
    """Calls `action` every `interval` seconds (each in a task of its own, so a
    slow one does not delay the next) until `stop` is set; waits for them all
    and raises the first failure of any of them, finished early or not (an
    assertion inside `action` must fail the test)."""
    started: list[asyncio.Task[object]] = []
    while not stop.is_set():
        started.append(asyncio.create_task(action()))  # type: ignore[arg-type]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    await asyncio.gather(*started)
