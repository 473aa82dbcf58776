"""Scenario 2: API pods force-killed (`--grace-period=0 --force`) while a
writer runs. Requests in flight on a killed pod fail; the writer retries a
failed request once with the same Idempotency-Key. Nothing acknowledged may
be lost, nothing may be written twice, and no order may be half written."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.e2e.conftest import Figures
from tests.e2e.kube import Cluster, is_ready, wait_for
from tests.e2e.loadpod import LoadPod, codes, wait_started
from tests.e2e.orders import audit

KILLS = 3


def replaced(cluster: Cluster, victim: str, replicas: int) -> Callable[[], bool]:
    def check() -> bool:
        others = [p for p in cluster.api_pods() if is_ready(p) and p["metadata"]["name"] != victim]
        return len(others) >= replicas

    return check


def test_force_killed_pods_lose_no_acknowledged_write(cluster: Cluster, figures: Figures) -> None:
    replicas = len(cluster.wait_api_settled())
    plan = {
        "max_seconds": 600,
        "max_requests": 20_000,
        "setup": {"products": 3, "stock": 1_000_000},
        # More writers than usual, so that some are in flight when a pod dies.
        "writers": {"concurrency": 6, "rate": 20, "retry": True},
    }
    killed: list[str] = []
    with LoadPod(cluster, "e2e-kill-load", plan) as load:
        wait_started()
        for _ in range(KILLS):
            victim = sorted(p["metadata"]["name"] for p in cluster.ready_api_pods())[0]
            cluster.kubectl("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
            killed.append(victim)
            # Its replacement must be serving before the next kill.
            wait_for("a replacement API pod to be ready", replaced(cluster, victim, replicas), timeout=180, interval=1)
            time.sleep(3)
        result = load.finish()
    orders = audit(cluster, result)
    figures.record(
        pods_killed=len(killed),
        requests_sent=result["sent"],
        outcomes=codes(result),
        retries=result["retries"],
        replayed=result["replayed"],
        **orders.figures(),
    )
    assert orders.acknowledged > 100
    orders.assert_consistent()
    assert orders.found == orders.acknowledged
