"""Order writers for the CloudNativePG scenarios.

WRITER_SCRIPT runs in a pod of the app image (standard library only) and
sends idempotent order creates to the API Service at a fixed rate, open loop:
a request is sent on schedule whatever the earlier ones are doing, so a
stalled failover shows as waiting requests, not as a lower rate. Every
request carries its own Idempotency-Key. A connection error (no HTTP answer)
is retried once with the same key; with `follow_retry_after`, a 503 is
retried with the same key after its Retry-After, within `retry_budget`
seconds. It prints one JSON line: every request's outcome.

`analyse` compares those outcomes with the orders in the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

WRITER_SCRIPT = r"""
import json, threading, time, urllib.error, urllib.request

config = json.loads(CONFIG)
url = "http://%s/orders/" % config["service"]
body = json.dumps({"items": [{"product_id": config["product_id"], "quantity": 1}]}).encode()
results, lock, gate = [], threading.Lock(), threading.BoundedSemaphore(config["max_in_flight"])


def attempt(key):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": "Bearer " + config["token"],
        "Idempotency-Key": key,
    })
    try:
        with urllib.request.urlopen(request, timeout=config["timeout"]) as response:
            return {"status": response.status, "id": json.loads(response.read())["id"]}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "retry_after": exc.headers.get("Retry-After")}
    except Exception as exc:  # no HTTP answer: refused, reset, timed out
        return {"status": None, "error": type(exc).__name__}


def send(key, sent):
    try:
        answers = []
        outcome = attempt(key)
        answers.append(outcome)
        if outcome["status"] is None:
            outcome = attempt(key)  # a connection error: once more, same key
            answers.append(outcome)
        deadline = sent + config["retry_budget"]
        while (config["follow_retry_after"] and outcome["status"] == 503 and outcome.get("retry_after")
               and time.time() + float(outcome["retry_after"]) < deadline):
            time.sleep(float(outcome["retry_after"]))
            outcome = attempt(key)
            answers.append(outcome)
        with lock:
            results.append({"key": key, "sent": sent, "done": time.time(), "answers": answers})
    finally:
        gate.release()


threads, start = [], time.time()
interval = 1.0 / config["rate"]
for n in range(int(config["rate"] * config["duration"])):
    due = start + n * interval
    time.sleep(max(0.0, due - time.time()))
    gate.acquire()
    thread = threading.Thread(target=send, args=("%s-%06d" % (config["prefix"], n), time.time()), daemon=True)
    thread.start()
    threads.append(thread)
for thread in threads:
    thread.join(timeout=config["timeout"] * 2 + config["retry_budget"])
print(json.dumps({"started": start, "ended": time.time(), "results": results}))
"""


def writer_script(**config: Any) -> str:
    """The pod's script with its configuration (service, token, product_id,
    rate, duration, prefix, follow_retry_after, ...)."""
    settings = {"timeout": 10, "max_in_flight": 200, "follow_retry_after": False, "retry_budget": 60, **config}
    return f"CONFIG = {json.dumps(json.dumps(settings))}\n{WRITER_SCRIPT}"


@dataclass(frozen=True)
class Outcome:
    figures: dict[str, Any]
    problems: list[str]


def analyse(run: dict[str, Any], orders: dict[str, tuple[int, int]], event_at: float) -> Outcome:
    """Writer outcomes against the database.

    orders: {idempotency key: (rows, an order id)} for the writer's user.
    event_at: when the fault was injected (epoch seconds; the nodes share the
    host's clock).
    """
    results = sorted(run["results"], key=lambda r: r["sent"])
    acknowledged: dict[str, int] = {}
    statuses: dict[str, int] = {}
    problems: list[str] = []
    failures = []
    for result in results:
        for answer in result["answers"]:
            status = str(answer["status"] if answer["status"] is not None else answer.get("error"))
            statuses[status] = statuses.get(status, 0) + 1
            if answer["status"] == 503 and not answer.get("retry_after"):
                problems.append(f"{result['key']}: 503 without Retry-After")
        final = result["answers"][-1]
        if final["status"] in (200, 201):
            acknowledged[result["key"]] = final["id"]
            ids = {a["id"] for a in result["answers"] if a["status"] in (200, 201)}
            if len(ids) > 1:
                problems.append(f"{result['key']}: answered with different orders {sorted(ids)}")
        else:
            failures.append(result)
    unexpected = {s: n for s, n in statuses.items() if s not in ("200", "201", "503")}
    if unexpected:
        problems.append(f"answers other than 201/200/503: {unexpected}")
    lost = sorted(key for key in acknowledged if key not in orders)
    duplicates = sorted(key for key, (rows, _) in orders.items() if rows > 1)
    wrong_id = sorted(key for key, order_id in acknowledged.items() if key in orders and orders[key][1] != order_id)
    sent_keys = {r["key"] for r in results}
    strangers = sorted(key for key in orders if key not in sent_keys)
    problems += [f"acknowledged but not in the database: {lost[:10]}"] if lost else []
    problems += [f"duplicated orders: {duplicates[:10]}"] if duplicates else []
    problems += [f"acknowledged id differs from the stored order: {wrong_id[:10]}"] if wrong_id else []
    problems += [f"orders no request asked for: {strangers[:10]}"] if strangers else []

    # Failover to first success: from the fault to the first acknowledged
    # write sent after the first failed one.
    answered_badly = [
        r for r in results if r["done"] >= event_at and any(a["status"] not in (200, 201) for a in r["answers"])
    ]
    recovery = 0.0
    if answered_badly:
        first_failure = min(r["sent"] for r in answered_badly)
        later_successes = [
            r["done"] for r in results if r["sent"] > first_failure and r["answers"][0]["status"] in (200, 201)
        ]
        if later_successes:
            recovery = min(later_successes) - event_at
        else:
            problems.append("no write succeeded after the first failure")
            recovery = float("inf")
    # Successes can come between failures (API pods and PgBouncer connections
    # do not all lose the primary at the same moment): the window from the
    # fault to the last failed answer is the outage clients saw.
    last_failure = max((r["done"] for r in answered_badly), default=event_at) - event_at
    duration = run["ended"] - run["started"]
    figures = {
        "writes_sent": len(results),
        "rate_per_second": round(len(results) / max(duration, 1e-9), 1),
        "acknowledged": len(acknowledged),
        "found_in_database": sum(1 for key in acknowledged if key in orders),
        "committed_without_acknowledgement": len([k for k in orders if k not in acknowledged]),
        "lost": len(lost),
        "duplicates": len(duplicates),
        "answers": statuses,
        "status_503": statuses.get("503", 0),
        "unacknowledged": len(failures),
        "failover_to_first_success_seconds": round(recovery, 1),
        "fault_to_last_failure_seconds": round(last_failure, 1),
    }
    return Outcome(figures, problems)
