"""Disruptions a production release must take without failing clients."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx

from tests.e2e.conftest import NAMESPACE, RELEASE, Cluster, run_pod_to_completion

IMAGE = os.environ.get("STOREFRONT_IMAGE", "")

LOAD_SCRIPT = """
import json, time, urllib.error, urllib.request
urls = ["http://{service}/products/?limit=5", "http://{service}/health"]
codes, sent, end = {{}}, 0, time.monotonic() + {duration}
while time.monotonic() < end:
    started = time.monotonic()
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                code = str(response.status)
        except urllib.error.HTTPError as exc:
            code = str(exc.code)
        except Exception as exc:
            code = type(exc).__name__
        codes[code] = codes.get(code, 0) + 1
        sent += 1
    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
print(json.dumps({{"sent": sent, "codes": codes}}))
"""


def test_rolling_restart_under_load_drops_nothing(cluster: Cluster, fullname: str) -> None:
    """Reliability matrix #1: ~20 requests/s through the Service while every
    API pod is replaced: no error and no dropped connection."""
    assert IMAGE, "STOREFRONT_IMAGE is not set (make e2e sets it)"
    duration = 150

    outcome: dict[str, object] = {}

    def load() -> None:
        script = LOAD_SCRIPT.format(service=fullname, duration=duration)
        outcome.update(run_pod_to_completion(cluster, "e2e-load", IMAGE, script, timeout=duration + 120))

    loader = threading.Thread(target=load)
    loader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cluster.pod_phase("e2e-load") != "Running":
        time.sleep(1)
    time.sleep(5)
    started = time.monotonic()
    cluster.kubectl("rollout", "restart", f"deployment/{fullname}")
    cluster.wait_rollout("deployment", fullname, timeout=duration)
    rollout_seconds = time.monotonic() - started
    loader.join()

    codes = outcome["codes"]
    assert isinstance(codes, dict)
    assert rollout_seconds < duration - 10, f"the rollout ({rollout_seconds:.0f} s) outlasted the load"
    assert set(codes) == {"200"}, f"non-200 answers or errors during the rollout: {codes}"
    assert int(str(outcome["sent"])) > 1000


def test_postgres_restart_answers_503_then_recovers(cluster: Cluster, fullname: str, api: str) -> None:
    """Reliability matrix #5: no 500 while the database is away, automatic recovery."""
    restarts_before = {
        p["metadata"]["name"]: p["status"]["container_statuses"][0]["restart_count"] for p in cluster.api_pods()
    }
    cluster.kubectl("delete", "pod", f"{fullname}-postgresql-0", "--wait=false")
    seen: dict[int, int] = {}
    recovered = False
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=api, timeout=10) as http:
        while time.monotonic() < deadline:
            try:
                status = http.get("/products/", params={"limit": 1}).status_code
            except httpx.TransportError:
                status = -1
            seen[status] = seen.get(status, 0) + 1
            if status == 503:
                assert http.get("/livez").status_code == 200
            if status == 200 and sum(v for k, v in seen.items() if k != 200) > 0:
                recovered = True
                break
            time.sleep(0.5)
    assert recovered, f"no recovery within 180 s: {seen}"
    assert set(seen) <= {200, 503}, f"answers other than 200/503 while PostgreSQL restarted: {seen}"
    cluster.wait_rollout("statefulset", f"{fullname}-postgresql")
    restarts_after = {
        p["metadata"]["name"]: p["status"]["container_statuses"][0]["restart_count"] for p in cluster.api_pods()
    }
    assert restarts_after == restarts_before, "API pods restarted because the database did"


def test_upgrades_rerun_migrations_without_immutable_field_errors(cluster: Cluster, fullname: str) -> None:
    def migration_jobs() -> dict[str, int | None]:
        jobs = cluster.batch.list_namespaced_job(NAMESPACE, label_selector="app.kubernetes.io/component=migrations")
        return {job["metadata"]["name"]: job["status"]["succeeded"] for job in jobs.to_dict()["items"]}

    before = migration_jobs()
    chart = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "storefront")
    for level in ("DEBUG", "DEBUG", "INFO"):  # a change, the same values again, a change back
        result = cluster.helm(
            "upgrade", RELEASE, chart, "--reuse-values", "--set", f"app.logLevel={level}", "--wait", "--timeout", "10m"
        )
        assert result.returncode == 0, result.stderr
    cluster.wait_rollout("deployment", fullname)
    after = migration_jobs()
    assert len(after) == 1, f"old migration Jobs left behind: {after}"
    assert set(after) == set(before), "same configuration as at first: the same Job name"
    status = json.loads(cluster.helm("status", RELEASE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
