"""Scenario 6: the PostgreSQL pod deleted under load. While it is away the
API answers 503 with Retry-After (nothing else), no API pod restarts, and the
first success comes within 10 s of PostgreSQL being Ready again."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Figures
from tests.e2e.kube import Cluster, ready_since, wait_for
from tests.e2e.loadpod import LoadPod, codes, failures, wait_started

RECOVERY_BOUND_SECONDS = 10


def new_postgres_ready(cluster: Cluster, old_uid: str) -> float | None:
    pod = cluster.pod(f"{cluster.fullname}-postgresql-0")
    if pod is None or pod["metadata"]["uid"] == old_uid:
        return None
    return ready_since(pod)


def test_postgres_pod_deleted_answers_503_then_recovers(cluster: Cluster, figures: Figures) -> None:
    cluster.wait_api_settled()
    restarts_before = cluster.api_restarts()
    old = cluster.pod(f"{cluster.fullname}-postgresql-0")
    assert old is not None
    plan: dict[str, Any] = {
        "max_seconds": 300,
        "max_requests": 20_000,
        "timeline": True,
        "setup": {"products": 1},
        # Routes that need the database on every request (no cache in front).
        "readers": {"concurrency": 4, "rate": 20, "paths": ["/products/?limit=5", "/orders/"]},
    }
    with LoadPod(cluster, "e2e-postgres-load", plan) as load:
        wait_started()
        deleted_at = time.time()
        cluster.kubectl("delete", "pod", f"{cluster.fullname}-postgresql-0", "--wait=false")
        ready_at = wait_for(
            "the new PostgreSQL pod to be Ready",
            lambda: new_postgres_ready(cluster, old["metadata"]["uid"]),
            timeout=240,
            interval=0.5,
        )
        time.sleep(RECOVERY_BOUND_SECONDS + 5)
        result = load.finish()

    timeline = [(t, outcome) for t, _kind, outcome in result["timeline"] if t >= deleted_at]
    failed = [t for t, outcome in timeline if not outcome.startswith("2")]
    assert failed, "the outage was not seen by the clients"
    first_failure = failed[0]
    first_success = next(t for t, outcome in timeline if t > first_failure and outcome.startswith("2"))
    outage = [outcome for t, outcome in timeline if first_failure <= t < first_success]
    counts = codes(result)
    restarts_after = cluster.api_restarts()
    figures.record(
        requests_sent=result["sent"],
        outcomes=counts,
        outage_responses=len(outage),
        deletion_to_first_failure_s=round(first_failure - deleted_at, 2),
        deletion_to_postgres_ready_s=round(ready_at - deleted_at, 2),
        postgres_ready_to_first_success_s=round(first_success - ready_at, 2),
        client_outage_s=round(first_success - first_failure, 2),
        missing_retry_after=result["missing_retry_after"],
    )
    assert failures(counts, allowed=("429", "503")) == {}, f"answers besides 503: {result['first_errors']}"
    assert result["missing_retry_after"] == 0, "503 without Retry-After"
    assert restarts_after == {name: restarts_before.get(name, 0) for name in restarts_after}, (
        "API pods restarted because the database did"
    )
    assert set(restarts_after) == set(restarts_before), "API pods were replaced"
    # Ready is recorded with one-second resolution.
    assert first_success - ready_at <= RECOVERY_BOUND_SECONDS + 1
