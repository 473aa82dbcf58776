"""The chart with the other Helm major: a reinstall with Helm 3 over what the
Helm 4 release left behind (its kept Secrets and the PostgreSQL volume) finds
the same passwords and the same data, and passes `helm test`."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Figures, port_forward
from tests.e2e.kube import CHART, DEPLOY_VALUES, HELM3, IMAGE, RELEASE, Cluster


def test_helm3_reinstall_finds_the_same_passwords_and_data(
    cluster: Cluster, kept_release: dict[str, object], figures: Figures
) -> None:
    assert kept_release, "run after test_10 (it uninstalls the Helm 4 release and records what it kept)"
    repository, tag = IMAGE.rsplit(":", 1)
    version = cluster.helm("version", "--template", "{{.Version}}", helm=HELM3).stdout
    assert version.startswith("v3."), version
    installed = cluster.helm(
        "install", RELEASE, str(CHART), *DEPLOY_VALUES, "--set", f"image.repository={repository}",
        "--set", f"image.tag={tag}", "--wait", "--timeout", "10m", helm=HELM3,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    cluster.wait_api_settled(replicas=2, timeout=240)
    tested = cluster.helm("test", RELEASE, "--timeout", "3m", "--logs", helm=HELM3)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    assert cluster.secret_values() == kept_release["secrets"], "the reinstall generated new secrets"
    claim = cluster.claim_uid(f"data-{cluster.fullname}-postgresql-0")
    assert claim == kept_release["claim_uid"], "the reinstall made a new volume"
    orders = int(cluster.scalar("SELECT count(*) FROM orders"))
    assert orders >= int(str(kept_release["orders"])), "orders were lost"
    with port_forward(f"service/{cluster.fullname}", 80) as base, httpx.Client(base_url=base, timeout=15) as http:
        ready = http.get("/readyz").json()
        listed = http.get("/products/", params={"limit": 1})
    assert ready == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}
    assert listed.status_code == 200
    assert listed.json()["total"] > 0, "the data from before is served"
    figures.record(helm3_version=version, orders_found=orders)
