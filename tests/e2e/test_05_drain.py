"""Scenario 3: draining a worker that runs API pods, under load. The
PodDisruptionBudget (maxUnavailable 1) lets the drain take one API pod at a
time; the drain completes, clients see no 5xx, and the pods come back on the
other nodes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.e2e.conftest import Figures
from tests.e2e.kube import Cluster, is_ready
from tests.e2e.loadpod import LoadPod, codes, failures, server_errors, steady_plan, wait_started
from tests.e2e.promwatch import ServerErrorWatch

PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget"


def workers(cluster: Cluster) -> list[str]:
    nodes = cluster.core.list_node().to_dict()["items"]
    return sorted(
        n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/control-plane" not in n["metadata"]["labels"]
    )


@contextmanager
def cordoned(cluster: Cluster, node: str) -> Iterator[None]:
    cluster.kubectl("cordon", node, namespace=None)
    try:
        yield
    finally:
        cluster.kubectl("uncordon", node, namespace=None)


class ReadyFloor:
    """Samples how many API pods are Ready (and not terminating), keeping the lowest."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.lowest = 1_000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.lowest = min(self.lowest, len(self.cluster.ready_api_pods()))

    def __enter__(self) -> ReadyFloor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_drain_respects_the_pdb_and_drops_nothing(cluster: Cluster, figures: Figures) -> None:
    pdb = cluster.kubectl("get", "pdb", cluster.fullname, "-o", "jsonpath={.spec.maxUnavailable}").stdout
    assert pdb == "1"
    database_node = cluster.pod(f"{cluster.fullname}-postgresql-0")["spec"]["node_name"]  # type: ignore[index]
    # The database's volume is local to its node (local-path): drain the other worker.
    target = next(node for node in workers(cluster) if node != database_node)
    # Both API pods onto the target first, so that the drain has to take two
    # of them and the budget must make it wait between them.
    with cordoned(cluster, database_node):
        cluster.kubectl("rollout", "restart", f"deployment/{cluster.fullname}")
        cluster.wait_rollout("deployment", cluster.fullname)
        replicas = len(cluster.wait_api_settled())
    on_target = [p["metadata"]["name"] for p in cluster.api_pods() if p["spec"]["node_name"] == target]
    assert len(on_target) >= 2, f"API pods on {target}: {on_target}"

    with (
        LoadPod(cluster, "e2e-drain-load", steady_plan(seconds=600)) as load,
        ServerErrorWatch(cluster) as watch,
        ReadyFloor(cluster) as floor,
    ):
        wait_started()
        started = time.monotonic()
        try:
            # Only the release's pods: kube-system's (CoreDNS has no budget in
            # kind) are not what this scenario is about.
            drain = cluster.kubectl(
                "drain", target, "--ignore-daemonsets", "--delete-emptydir-data",
                "--pod-selector=app.kubernetes.io/part-of=storefront", "--timeout=300s",
                namespace=None, timeout=330, check=False,
            )  # fmt: skip
            drain_seconds = round(time.monotonic() - started, 1)
            settled = cluster.wait_api_settled(replicas=replicas)
        finally:
            cluster.kubectl("uncordon", target, namespace=None)
        wait_started()
        result = load.finish()
    counts = codes(result)
    figures.record(
        drained_node=target,
        api_pods_on_node=len(on_target),
        drain_seconds=drain_seconds,
        pdb_refusals=drain.stdout.count(PDB_REFUSAL) + drain.stderr.count(PDB_REFUSAL),
        lowest_ready_api_pods=floor.lowest,
        requests_sent=result["sent"],
        outcomes=counts,
        server_5xx_counted=watch.growth(),
    )
    assert drain.returncode == 0, drain.stderr
    assert PDB_REFUSAL in drain.stdout + drain.stderr, "the budget never held an eviction back"
    assert floor.lowest >= replicas - 1, "more API pods were down at once than the budget allows"
    assert all(p["spec"]["node_name"] != target and is_ready(p) for p in settled)
    assert failures(counts) == {}, (
        f"non-2xx (besides 429) or connection errors: {result['first_errors']}\n{watch.warnings()}"
    )
    assert server_errors(counts) == 0
    assert watch.growth() == 0
