"""Scenario 9: the developer loop for real against the cluster, as a
developer runs it (`make dev`, `make dev PROFILES=sync`, `make dev-run`,
`make dev-delete`), in a copy of this tree.

The production release goes first (`helm uninstall`): the dev release has
the same name and namespace, as on a developer's cluster. Its generated
Secrets and the PostgreSQL volume stay (by design), so the dev releases and
test_11's reinstall find the same passwords and data.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Figures
from tests.e2e.devloop import DevSession, copy_tree, make
from tests.e2e.kube import NAMESPACE, RELEASE, Cluster, wait_for

HEALTH = Path("app/ops/health.py")
SERVED = 'StatusOut(status="healthy")'
RELEASE_PODS = f"app.kubernetes.io/instance={RELEASE}"


@pytest.fixture(scope="module")
def dev_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("dev-tree"))


def release_gone(cluster: Cluster) -> None:
    """Until no pod of the release is left, terminating ones included (the
    next scenario's snapshot of the namespace must not hold them)."""

    def gone() -> bool:
        return not cluster.core.list_namespaced_pod(NAMESPACE, label_selector=RELEASE_PODS).items

    wait_for("the release's pods to be gone", gone, timeout=240)


def namespace_objects(cluster: Cluster) -> set[str]:
    kinds = cluster.kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name", namespace=None).stdout
    listed = [k for k in kinds.split() if k not in ("events", "events.events.k8s.io")]
    return set(cluster.kubectl("get", ",".join(listed), "-o", "name").stdout.split())


def test_uninstall_keeps_the_database_volume_and_passwords(
    cluster: Cluster, kept_release: dict[str, Any], figures: Figures
) -> None:
    kept_release["secrets"] = cluster.secret_values()
    kept_release["orders"] = int(cluster.scalar("SELECT count(*) FROM orders"))
    claim = f"data-{cluster.fullname}-postgresql-0"
    kept_release["claim_uid"] = cluster.claim_uid(claim)
    result = cluster.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    assert result.returncode == 0, result.stderr
    # `helm test`'s pod is a hook, kept until the next `helm test` for
    # `helm test --logs` (the chart's delete policy), and `helm uninstall`
    # deletes no hook resources (pkg/action/uninstall.go): a user removes it
    # by hand, as here.
    cluster.kubectl("delete", "pod", "-l", f"{RELEASE_PODS},app.kubernetes.io/component=test", "--ignore-not-found")
    release_gone(cluster)
    assert cluster.secret_values() == kept_release["secrets"], "helm uninstall removed or changed a generated secret"
    assert cluster.claim_uid(claim) == kept_release["claim_uid"]
    figures.record(orders_kept=kept_release["orders"])


def test_make_dev_deploys_and_serves_a_rebuilt_edit(
    cluster: Cluster, dev_tree: Path, tmp_path: Path, figures: Figures
) -> None:
    source = dev_tree / HEALTH
    original = source.read_text()
    started = time.monotonic()
    try:
        with DevSession(dev_tree, tmp_path / "make-dev.log") as dev:
            dev.wait_serving()
            up_s = round(time.monotonic() - started, 1)
            images_before = {c["image"] for p in cluster.api_pods() for c in p["spec"]["containers"]}
            marker = f"rebuilt-{secrets.token_hex(3)}"
            seconds = dev.edit_to_served(source, SERVED, f'StatusOut(status="{marker}")', served=marker)
            images_after = {c["image"] for p in cluster.api_pods() for c in p["spec"]["containers"]}
            stopping = time.monotonic()
        stop_s = round(time.monotonic() - stopping, 1)
        log = dev.log()
    finally:
        source.write_text(original)
    figures.record(make_dev_to_serving_s=up_s, edit_to_served_s=seconds, ctrl_c_to_cleaned_up_s=stop_s)
    assert images_after != images_before, "the edit was served by a new image"
    assert "unable to apply caps" not in log
    assert cluster.helm("status", RELEASE).returncode != 0, "skaffold dev removed its release on Ctrl+C"
    release_gone(cluster)


def test_make_dev_sync_serves_an_edit_without_a_rebuild(
    cluster: Cluster, dev_tree: Path, tmp_path: Path, figures: Figures
) -> None:
    source = dev_tree / HEALTH
    original = source.read_text()
    started = time.monotonic()
    try:
        with DevSession(dev_tree, tmp_path / "make-dev-sync.log", profiles="sync") as dev:
            dev.wait_serving()
            up_s = round(time.monotonic() - started, 1)
            pods_before = sorted(p["metadata"]["name"] for p in cluster.api_pods())
            marker = f"synced-{secrets.token_hex(3)}"
            seconds = dev.edit_to_served(source, SERVED, f'StatusOut(status="{marker}")', served=marker)
            pods_after = sorted(p["metadata"]["name"] for p in cluster.api_pods())
    finally:
        source.write_text(original)
    figures.record(make_dev_to_serving_s=up_s, edit_to_served_s=seconds)
    assert pods_after == pods_before, "a synced edit is reloaded in the running pod, not redeployed"
    assert cluster.helm("status", RELEASE).returncode != 0
    release_gone(cluster)


def test_skaffold_run_and_delete_leave_nothing_behind(cluster: Cluster, dev_tree: Path, figures: Figures) -> None:
    before = namespace_objects(cluster)
    started = time.monotonic()
    run = make(dev_tree, "dev-run")
    run_s = round(time.monotonic() - started, 1)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    deployed = namespace_objects(cluster)
    assert f"deployment.apps/{cluster.fullname}" in deployed
    assert cluster.wait_api_settled()
    started = time.monotonic()
    deleted = make(dev_tree, "dev-delete")
    assert deleted.returncode == 0, deleted.stdout[-5000:] + deleted.stderr[-3000:]
    release_gone(cluster)
    # Owned objects (EndpointSlices, ReplicaSets) go a little after their owners.
    deadline = time.monotonic() + 120
    left = namespace_objects(cluster)
    while left != before and time.monotonic() < deadline:
        time.sleep(3)
        left = namespace_objects(cluster)
    figures.record(skaffold_run_s=run_s, skaffold_delete_s=round(time.monotonic() - started, 1))
    assert left == before, f"left behind: {sorted(left - before)}; removed: {sorted(before - left)}"
