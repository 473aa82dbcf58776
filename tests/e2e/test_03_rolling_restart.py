"""Scenario 1: three rolling restarts in a row under a steady stream of order
writes (with Idempotency-Keys) and reads, from a pod inside the cluster
through the Service."""

from __future__ import annotations

import time

from tests.e2e.conftest import Figures
from tests.e2e.kube import Cluster
from tests.e2e.loadpod import LoadPod, codes, failures, server_errors, steady_plan, wait_started
from tests.e2e.orders import audit
from tests.e2e.promwatch import ServerErrorWatch

RESTARTS = 3


def test_three_rolling_restarts_under_writes_drop_nothing(cluster: Cluster, figures: Figures) -> None:
    cluster.wait_api_settled()
    rollouts: list[float] = []
    with LoadPod(cluster, "e2e-rolling-load", steady_plan(seconds=600)) as load, ServerErrorWatch(cluster) as watch:
        wait_started()
        for _ in range(RESTARTS):
            started = time.monotonic()
            cluster.kubectl("rollout", "restart", f"deployment/{cluster.fullname}")
            cluster.wait_rollout("deployment", cluster.fullname, timeout=300)
            cluster.wait_api_settled()  # the old pods are gone too
            rollouts.append(round(time.monotonic() - started, 1))
        wait_started()
        result = load.finish()
    orders = audit(cluster, result)
    counts = codes(result)
    figures.record(
        rollout_seconds=rollouts,
        requests_sent=result["sent"],
        outcomes=counts,
        server_5xx_counted=watch.growth(),
        api_pods_watched=watch.pods_seen(),
        **orders.figures(),
    )
    assert failures(counts) == {}, (
        f"non-2xx (besides 429) or connection errors: {result['first_errors']}\n{watch.warnings()}"
    )
    assert server_errors(counts) == 0
    assert watch.growth() == 0, f"the servers counted 5xx answers\n{watch.warnings()}"
    assert result["retries"] == 0, "every write succeeded at its first attempt"
    assert orders.acknowledged > 100
    orders.assert_consistent()
    assert orders.found == orders.acknowledged
