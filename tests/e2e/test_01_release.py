"""The installed release: admitted under PSS restricted, ready, hardened, serving."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import NAMESPACE, RELEASE, Cluster


def test_namespace_enforces_pod_security_restricted(cluster: Cluster) -> None:
    labels = cluster.core.read_namespace(NAMESPACE).to_dict()["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_workload_is_ready(cluster: Cluster, fullname: str) -> None:
    # The Deployment starts at one pod; the HPA raises it to minReplicas on its
    # first sync (15 s), metrics or not. helm --wait saw only the first pod.
    minimum = cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(fullname, NAMESPACE).to_dict()["spec"]
    ready = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready = cluster.apps.read_namespaced_deployment(fullname, NAMESPACE).to_dict()["status"]["ready_replicas"] or 0
        if ready >= minimum["min_replicas"]:
            break
        time.sleep(3)
    assert ready >= minimum["min_replicas"] == 2
    for name in (f"{fullname}-postgresql", f"{fullname}-redis"):
        assert cluster.apps.read_namespaced_stateful_set(name, NAMESPACE).to_dict()["status"]["ready_replicas"] == 1
    jobs = cluster.batch.list_namespaced_job(NAMESPACE, label_selector="app.kubernetes.io/component=migrations")
    assert [job["status"]["succeeded"] for job in jobs.to_dict()["items"]] == [1]
    claims = cluster.core.list_namespaced_persistent_volume_claim(NAMESPACE).to_dict()["items"]
    assert [claim["status"]["phase"] for claim in claims] == ["Bound"]


def test_helm_test_passes(cluster: Cluster) -> None:
    result = cluster.helm("test", RELEASE, "--timeout", "3m", "--logs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Phase:          Succeeded" in result.stdout
    assert "/readyz 200 {'status': 'ready'" in result.stdout  # what the test pod printed


def test_the_api_serves_through_its_service(api: str) -> None:
    with httpx.Client(base_url=api, timeout=15) as http:
        ready = http.get("/readyz").json()
        assert ready == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}
        http.post("/users/", json={"email": "e2e@example.com", "username": "e2e", "password": "end to end password"})
        tokens = http.post("/auth/token", data={"username": "e2e", "password": "end to end password"}).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        product = http.post("/products/", json={"name": "Kind mug", "price": "12.50", "stock": 5}, headers=auth).json()
        assert http.get(f"/products/{product['id']}").headers["x-cache"] == "MISS"
        assert http.get(f"/products/{product['id']}").headers["x-cache"] == "HIT"
        order = http.post("/orders/", json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=auth)
        assert order.status_code == 201
        assert order.json()["total"] == "25.00"
        assert http.get(f"/products/{product['id']}").json()["stock"] == 3
        assert http.get("/stats").json()["orders"] >= 1
        assert "http_requests_total" in http.get("/metrics").text


def test_api_pods_run_hardened(cluster: Cluster) -> None:
    pod = cluster.api_pods()[0]["metadata"]["name"]
    probe = (
        "import os, pathlib\n"
        "print('uid', os.getuid())\n"
        "try:\n    pathlib.Path('/app/x').write_text('x'); print('app-writable')\n"
        "except OSError: print('app-read-only')\n"
        "pathlib.Path('/tmp/x').write_text('x'); print('tmp-writable')\n"
        "print('token', os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token'))\n"
    )
    out = cluster.kubectl("exec", pod, "-c", "api", "--", "python3", "-c", probe).stdout.split("\n")
    assert out[0].startswith("uid ")
    assert out[0] != "uid 0"
    assert "app-read-only" in out
    assert "tmp-writable" in out
    assert "token False" in out


def test_metrics_server_feeds_the_autoscaler(cluster: Cluster, fullname: str) -> None:
    deadline = time.monotonic() + 240
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(fullname, NAMESPACE).to_dict()["status"]
        metrics = status.get("current_metrics") or []
        assert isinstance(metrics, list)
        if any((m.get("resource") or {}).get("current", {}).get("average_utilization") is not None for m in metrics):
            return
        time.sleep(10)
    raise AssertionError(f"the HPA never got CPU metrics: {status}")
