"""Scenario 5: `helm upgrade` to an image whose migration adds a column and an
index (expand-style), under load, then `helm rollback` to the previous
revision: its pods start on the newer schema and serve. The generated
passwords stay the same throughout."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.conftest import Figures
from tests.e2e.kube import CHART, IMAGE_V2, NAMESPACE, RELEASE, Cluster, is_ready, wait_for
from tests.e2e.loadpod import LoadPod, codes, failures, server_errors, steady_plan, wait_started
from tests.e2e.orders import audit
from tests.e2e.promwatch import ServerErrorWatch

V2_REVISION = "e2e_v2"  # tests/e2e/images/v2/expand.py.in


def revision(cluster: Cluster) -> int:
    return int(json.loads(cluster.helm("status", RELEASE, "-o", "json").stdout)["version"])


def api_images(cluster: Cluster) -> set[str]:
    return {c["image"] for p in cluster.api_pods() for c in p["spec"]["containers"] if c["name"] == "api"}


def schema_revision(cluster: Cluster) -> str:
    return cluster.scalar("SELECT version_num FROM alembic_version")


def job_runs(cluster: Cluster, job: dict[str, Any]) -> int:
    selector = f"job-name={job['metadata']['name']}"
    return len(cluster.core.list_namespaced_pod(NAMESPACE, label_selector=selector).to_dict()["items"])


def test_upgrade_with_a_schema_change_then_rollback(cluster: Cluster, figures: Figures) -> None:
    assert IMAGE_V2, "STOREFRONT_IMAGE_V2 is not set (make e2e builds and loads it)"
    repository, v2_tag = IMAGE_V2.rsplit(":", 1)
    cluster.wait_api_settled()
    secrets_before = cluster.secret_values()
    first = revision(cluster)
    v1_images = api_images(cluster)
    v1_schema = schema_revision(cluster)
    jobs_before = cluster.migration_jobs()

    with LoadPod(cluster, "e2e-upgrade-load", steady_plan(seconds=900)) as load, ServerErrorWatch(cluster) as watch:
        wait_started()
        started = time.monotonic()
        upgraded = cluster.helm(
            "upgrade", RELEASE, str(CHART), "--reuse-values", "--set", f"image.repository={repository}",
            "--set", f"image.tag={v2_tag}", "--wait", "--timeout", "10m",
        )  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stderr
        v2_pods = cluster.wait_api_settled()
        upgrade_s = round(time.monotonic() - started, 1)
        assert api_images(cluster) == {IMAGE_V2}

        # The migration Job of the new revision ran once, and only it is left.
        jobs = cluster.migration_jobs()
        new_jobs = [job for name, job in jobs.items() if name not in jobs_before]
        assert len(new_jobs) == 1, f"migration Jobs: {sorted(jobs)}"
        assert len(jobs) == 1, f"old migration Jobs left behind: {sorted(jobs)}"
        job = new_jobs[0]
        assert job["status"]["succeeded"] == 1, job["status"]
        assert not job["status"]["failed"], job["status"]
        assert job_runs(cluster, job) == 1, "the migration ran more than once"
        assert schema_revision(cluster) == V2_REVISION
        current = cluster.exec(v2_pods[0]["metadata"]["name"], "api", "alembic", "current")
        heads = cluster.exec(v2_pods[0]["metadata"]["name"], "api", "alembic", "heads")
        assert current.split()[0] == heads.split()[0] == V2_REVISION, (current, heads)
        column = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = :'c'"
        assert cluster.scalar(column, c="e2e_note") == "1", "the migration added its column"
        assert cluster.secret_values() == secrets_before, "a generated secret changed on upgrade"

        # Back to the previous revision: its code is older than the schema.
        started = time.monotonic()
        rolled_back = cluster.helm("rollback", RELEASE, str(first), "--wait", "--timeout", "10m")
        assert rolled_back.returncode == 0, rolled_back.stderr
        v1_pods = cluster.wait_api_settled()
        rollback_s = round(time.monotonic() - started, 1)
        assert api_images(cluster) == v1_images
        assert schema_revision(cluster) == V2_REVISION, "a rollback never downgrades the schema"
        waited = cluster.kubectl("logs", v1_pods[0]["metadata"]["name"], "-c", "wait-for-schema").stdout
        assert "newer revision recorded as descending from our head" in waited, waited
        assert all(is_ready(p) for p in v1_pods)
        rollback_jobs = {name: job["status"] for name, job in cluster.migration_jobs().items()}
        wait_started(5)
        result = load.finish()

    orders = audit(cluster, result)
    counts = codes(result)
    figures.record(
        upgrade_seconds=upgrade_s,
        rollback_seconds=rollback_s,
        schema_before=v1_schema,
        schema_after=V2_REVISION,
        requests_sent=result["sent"],
        outcomes=counts,
        server_5xx_counted=watch.growth(),
        rollback_migration_jobs=rollback_jobs,
        **orders.figures(),
    )
    assert failures(counts) == {}, (
        f"non-2xx (besides 429) or connection errors: {result['first_errors']}\n{watch.warnings()}"
    )
    assert server_errors(counts) == 0
    assert watch.growth() == 0
    orders.assert_consistent()
    assert cluster.secret_values() == secrets_before, "a generated secret changed on rollback"
    # The rolled-back revision's own migration Job must not fail on the newer schema.
    wait_for(
        "the rolled-back revision's migration Job to finish",
        lambda: all(job["status"]["succeeded"] or job["status"]["failed"] for job in cluster.migration_jobs().values()),
        timeout=120,
    )
    assert all(job["status"]["succeeded"] == 1 for job in cluster.migration_jobs().values()), cluster.migration_jobs()
