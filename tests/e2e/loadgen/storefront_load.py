"""A bounded load generator that runs INSIDE the cluster, in a pod of its own.

The e2e tests mount this file from a ConfigMap into a pod running the app's
own image (Python and httpx, nothing to pull) and pass a JSON plan in the
LOAD_PLAN environment variable. It talks only to the URL the plan names (the
API's Service) and stops at whichever comes first: `max_seconds`,
`max_requests`, or the stop file (`kubectl exec ... touch /tmp/stop`).

Plan keys (all optional except base_url):
  base_url        e.g. http://storefront
  max_seconds     hard end of the run
  max_requests    hard cap on requests sent (retries included)
  stop_file       ends the run when it exists
  setup           {"products": n, "stock": s}: registers a user of its own,
                  logs in, creates n products with stock s
  writers         {"concurrency": c, "rate": r, "retry": true}: POST /orders/
                  with an Idempotency-Key; a connection error or a 5xx is
                  retried ONCE with the same key
  readers         {"concurrency": c, "rate": r, "paths": [...]}: GETs in turn;
                  "{product}" in a path is one of the setup's products;
                  rate 0 means as fast as the answers come
  timeline        record [epoch seconds, kind, outcome] for every attempt

Stdout: one line `LOAD-READY {...}` after setup, `LOAD-PROGRESS {...}` every
5 s, and the summary as the last line `LOAD-RESULT {...}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

# Transport errors are reported by class name (ConnectError, ReadError, ...).
Outcome = str


@dataclass
class Tally:
    """Outcomes per request kind, plus what the writers got acknowledged."""

    codes: dict[str, dict[Outcome, int]] = field(default_factory=dict)
    sent: int = 0
    acknowledged: list[tuple[str, int]] = field(default_factory=list)
    unacknowledged: list[str] = field(default_factory=list)
    retries: int = 0
    replayed: int = 0
    missing_retry_after: int = 0
    timeline: list[tuple[float, str, Outcome]] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def count(self, kind: str, outcome: Outcome) -> None:
        by_kind = self.codes.setdefault(kind, {})
        by_kind[outcome] = by_kind.get(outcome, 0) + 1


class Run:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.tally = Tally()
        self.deadline = time.monotonic() + float(plan.get("max_seconds", 120))
        self.max_requests = int(plan.get("max_requests", 10_000))
        self.stop_file = str(plan.get("stop_file", "/tmp/stop"))  # noqa: S108  (the pod's own emptyDir)
        self.record_timeline = bool(plan.get("timeline", False))
        self.run_id = secrets.token_hex(4)
        self.headers: dict[str, str] = {}
        self.products: list[int] = []
        self.user_id = 0
        self.username = ""
        self.stock = 0
        self._stopped = False

    # -- bounds -------------------------------------------------------------

    def over(self) -> bool:
        if self._stopped:
            return True
        if time.monotonic() >= self.deadline or self.tally.sent >= self.max_requests or os.path.exists(self.stop_file):
            self._stopped = True
        return self._stopped

    async def send(
        self, http: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        """One attempt; returns the response, or None on a transport error."""
        self.tally.sent += 1
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            outcome = type(exc).__name__
            self._note(kind, outcome, f"{kind} {method} {url}: {outcome} {exc}")
            return None
        outcome = str(response.status_code)
        if response.status_code == 503 and "retry-after" not in response.headers:
            self.tally.missing_retry_after += 1
        detail = "" if response.status_code < 400 else f"{kind} {method} {url}: {outcome} {response.text[:200]}"
        self._note(kind, outcome, detail)
        return response

    def _note(self, kind: str, outcome: Outcome, detail: str) -> None:
        self.tally.count(kind, outcome)
        if self.record_timeline:
            self.tally.timeline.append((round(time.time(), 3), kind, outcome))
        if detail and len(self.tally.first_errors) < 20:
            self.tally.first_errors.append(f"{time.time():.3f} {detail}")

    # -- setup --------------------------------------------------------------

    async def setup(self, http: httpx.AsyncClient) -> None:
        setup = self.plan.get("setup") or {}
        # A new name per attempt: a registration that succeeded before a later
        # setup step failed must not make the retry conflict with it.
        self.run_id = secrets.token_hex(4)
        self.username = f"load-{self.run_id}"
        self.products = []
        password = secrets.token_urlsafe(18)
        user = await self._must(
            http.post(
                "/users/",
                json={"email": f"{self.username}@example.com", "username": self.username, "password": password},
            )
        )
        self.user_id = int(user["id"])
        tokens = await self._must(http.post("/auth/token", data={"username": self.username, "password": password}))
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.stock = int(setup.get("stock", 1_000_000))
        for n in range(int(setup.get("products", 1))):
            product = await self._must(
                http.post(
                    "/products/",
                    json={"name": f"{self.username} item {n}", "price": "2.50", "stock": self.stock},
                    headers=self.headers,
                )
            )
            self.products.append(int(product["id"]))

    @staticmethod
    async def _must(request: Any) -> dict[str, Any]:
        """Setup requests are retried for a while: the run has not started yet."""
        response: httpx.Response = await request
        response.raise_for_status()
        return dict(response.json())

    # -- workers ------------------------------------------------------------

    async def writer(self, http: httpx.AsyncClient, index: int, interval: float, retry: bool) -> None:
        sequence = 0
        while not self.over():
            started = time.monotonic()
            key = f"{self.run_id}-{index}-{sequence}"
            sequence += 1
            product = self.products[sequence % len(self.products)]
            body = {"items": [{"product_id": product, "quantity": 1}]}
            headers = {**self.headers, "Idempotency-Key": key}
            order_id = await self._write_once(http, body, headers)
            if order_id is None and retry and not self.over():
                self.tally.retries += 1
                await asyncio.sleep(0.2)
                order_id = await self._write_once(http, body, headers)
            if order_id is None:
                self.tally.unacknowledged.append(key)
            else:
                self.tally.acknowledged.append((key, order_id))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _write_once(self, http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> int | None:
        response = await self.send(http, "write", "POST", "/orders/", json=body, headers=headers)
        if response is None or not response.is_success:
            return None
        if response.headers.get("idempotent-replayed") == "true":
            self.tally.replayed += 1
        return int(response.json()["id"])

    async def reader(self, http: httpx.AsyncClient, index: int, interval: float, paths: list[str]) -> None:
        turn = index
        while not self.over():
            started = time.monotonic()
            path = paths[turn % len(paths)]
            turn += 1
            if "{product}" in path:
                path = path.replace("{product}", str(self.products[turn % len(self.products)]))
            await self.send(http, "read", "GET", path, headers=self.headers)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def progress(self) -> None:
        """A line every 5 s; also what notices the stop file when no worker is waiting on a request."""
        last = time.monotonic()
        while not self.over():
            await asyncio.sleep(0.5)
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                emit("LOAD-PROGRESS", {"sent": self.tally.sent, "codes": self.tally.codes})

    # -- the run ------------------------------------------------------------

    async def main(self) -> dict[str, Any]:
        keepalive = bool(self.plan.get("keepalive", True))
        limits = httpx.Limits(max_keepalive_connections=100 if keepalive else 0, max_connections=200)
        timeout = httpx.Timeout(float(self.plan.get("timeout", 10)))
        started = time.time()
        async with httpx.AsyncClient(base_url=self.plan["base_url"], limits=limits, timeout=timeout) as http:
            for attempt in range(30):  # the Service may still be settling
                try:
                    await self.setup(http)
                    break
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    if attempt == 29:
                        raise
                    print(f"setup failed ({exc!r}), retrying", file=sys.stderr, flush=True)
                    await asyncio.sleep(2)
            emit("LOAD-READY", {"user_id": self.user_id, "products": self.products, "time": time.time()})
            tasks = [asyncio.create_task(self.progress())]
            writers = self.plan.get("writers") or {}
            if writers.get("concurrency"):
                concurrency = int(writers["concurrency"])
                interval = concurrency / float(writers["rate"]) if writers.get("rate") else 0.0
                tasks += [
                    asyncio.create_task(self.writer(http, i, interval, bool(writers.get("retry", True))))
                    for i in range(concurrency)
                ]
            readers = self.plan.get("readers") or {}
            if readers.get("concurrency"):
                concurrency = int(readers["concurrency"])
                interval = concurrency / float(readers["rate"]) if readers.get("rate") else 0.0
                paths = list(readers.get("paths") or ["/health"])
                tasks += [asyncio.create_task(self.reader(http, i, interval, paths)) for i in range(concurrency)]
            await asyncio.gather(*tasks)
        tally = self.tally
        return {
            "run_id": self.run_id,
            "user_id": self.user_id,
            "username": self.username,
            "products": self.products,
            "stock": self.stock,
            "started": started,
            "ended": time.time(),
            "sent": tally.sent,
            "codes": tally.codes,
            "acknowledged": tally.acknowledged,
            "unacknowledged": tally.unacknowledged,
            "retries": tally.retries,
            "replayed": tally.replayed,
            "missing_retry_after": tally.missing_retry_after,
            "first_errors": tally.first_errors,
            "timeline": tally.timeline,
        }


def emit(marker: str, payload: dict[str, Any]) -> None:
    print(f"{marker} {json.dumps(payload, separators=(',', ':'))}", flush=True)


def main() -> None:
    plan = json.loads(os.environ["LOAD_PLAN"])
    emit("LOAD-RESULT", asyncio.run(Run(plan).main()))


if __name__ == "__main__":
    main()
