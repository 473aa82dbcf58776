"""The cluster as the tests see it: the kubernetes client, kubectl and helm.

Everything is configured from the environment `make e2e` sets; the defaults
fit `make kind-up deploy` on this machine.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "storefront"
KUBE_CONTEXT = os.environ.get("KUBE_CONTEXT", "kind-storefront")
NAMESPACE = os.environ.get("NAMESPACE", "storefront")
RELEASE = os.environ.get("RELEASE", "storefront")
KUBECTL = os.environ.get("KUBECTL", str(REPO_ROOT / "bin" / "kubectl"))
HELM = os.environ.get("HELM", str(REPO_ROOT / "bin" / "helm"))
HELM3 = os.environ.get("HELM3", str(REPO_ROOT / "bin" / "helm3"))
# The image the release runs, and the test-only v2 built FROM it with one more
# (expand-style) migration (tests/e2e/images/v2).
IMAGE = os.environ.get("STOREFRONT_IMAGE", "")
IMAGE_V2 = os.environ.get("STOREFRONT_IMAGE_V2", "")
# The values files `make deploy` used (e.g. "-f charts/storefront/values-airgap.yaml").
DEPLOY_VALUES = shlex.split(os.environ.get("DEPLOY_VALUES", ""))
API_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=api"

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Polls `check` until it returns something truthy; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_since(pod: dict[str, Any]) -> float | None:
    """When the pod last turned Ready (epoch seconds), or None."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return float(condition["last_transition_time"].timestamp())
    return None


@dataclass(frozen=True)
class Cluster:
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    autoscaling: client.AutoscalingV2Api
    fullname: str

    # -- commands -----------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        namespace: str | None = NAMESPACE,
        timeout: float = 120,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        scope = ["--namespace", namespace] if namespace else []
        command = [KUBECTL, "--context", KUBE_CONTEXT, *scope, *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{shlex.join(command)} failed ({result.returncode}): {result.stderr}{result.stdout}")
        return result

    def helm(
        self, *args: str, helm: str = HELM, namespace: str = NAMESPACE, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        command = [helm, "--kube-context", KUBE_CONTEXT, "--namespace", namespace, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def exec(self, pod: str, container: str, *command: str, timeout: float = 60) -> str:
        return self.kubectl("exec", pod, "-c", container, "--", *command, timeout=timeout).stdout

    def apply(self, manifest: dict[str, Any], namespace: str | None = NAMESPACE) -> None:
        """Creates or updates one object (a plain manifest, as kubectl takes it)."""
        self.kubectl("apply", "-f", "-", namespace=namespace, stdin=json.dumps(manifest))

    # -- reading state --------------------------------------------------------

    def pods(self, selector: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        """Pods that are not being deleted."""
        items = self.core.list_namespaced_pod(namespace, label_selector=selector).to_dict()["items"]
        return [p for p in items if p["metadata"]["deletion_timestamp"] is None]

    def api_pods(self) -> list[dict[str, Any]]:
        return self.pods(API_SELECTOR)

    def ready_api_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.api_pods() if is_ready(p)]

    def api_restarts(self) -> dict[str, int]:
        return {
            p["metadata"]["name"]: sum(c["restart_count"] for c in p["status"].get("container_statuses") or [])
            for p in self.api_pods()
        }

    def deployment(self) -> dict[str, Any]:
        return dict(self.apps.read_namespaced_deployment(self.fullname, NAMESPACE).to_dict())

    def hpa(self) -> dict[str, Any]:
        return dict(self.autoscaling.read_namespaced_horizontal_pod_autoscaler(self.fullname, NAMESPACE).to_dict())

    def pod(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        items = self.core.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}").to_dict()["items"]
        return items[0] if items else None

    def secret_values(self) -> dict[str, str]:
        """Every generated secret of the release ("secret/key" -> value)."""
        values = {}
        for name in (self.fullname, f"{self.fullname}-postgresql", f"{self.fullname}-redis"):
            data = self.core.read_namespaced_secret(name, NAMESPACE).to_dict()["data"]
            values.update({f"{name}/{key}": base64.b64decode(value).decode() for key, value in data.items()})
        return values

    def claim_uid(self, name: str) -> str:
        return str(self.core.read_namespaced_persistent_volume_claim(name, NAMESPACE).to_dict()["metadata"]["uid"])

    def migration_jobs(self) -> dict[str, dict[str, Any]]:
        jobs = self.batch.list_namespaced_job(NAMESPACE, label_selector="app.kubernetes.io/component=migrations")
        return {job["metadata"]["name"]: job for job in jobs.to_dict()["items"]}

    # -- waiting --------------------------------------------------------------

    def wait_rollout(self, kind: str, name: str, timeout: int = 300) -> None:
        self.kubectl("rollout", "status", f"{kind}/{name}", f"--timeout={timeout}s", timeout=timeout + 30)

    def wait_api_settled(self, replicas: int | None = None, timeout: float = 300) -> list[dict[str, Any]]:
        """Until the Deployment is rolled out and `replicas` (default: its
        own spec) API pods are Ready and none is terminating."""

        def settled() -> list[dict[str, Any]] | None:
            deployment = self.deployment()
            wanted = replicas if replicas is not None else deployment["spec"]["replicas"]
            status = deployment["status"]
            items = self.core.list_namespaced_pod(NAMESPACE, label_selector=API_SELECTOR).to_dict()["items"]
            ready = [p for p in items if is_ready(p) and p["metadata"]["deletion_timestamp"] is None]
            done = (
                status.get("updated_replicas") == wanted == status.get("ready_replicas") == status.get("replicas")
                and len(ready) == len(items) == wanted
            )
            return ready if done else None

        return wait_for("the API pods to settle", settled, timeout)

    # -- PostgreSQL, as its local superuser over the socket ---------------------

    def psql(self, sql: str, **variables: str | int) -> list[list[str]]:
        """Rows of a query run in the PostgreSQL pod (unaligned, tab-separated).
        `variables` are psql variables (`:name`, `:'name'` in the SQL), so
        values never become SQL text."""
        settings = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
        out = self.kubectl(
            "exec", "-i", f"{self.fullname}-postgresql-0", "-c", "postgresql", "--",
            "psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", *settings,
            "-h", "/var/run/postgresql", "-U", "postgres", "-d", "storefront", "-f", "-",
            stdin=sql, timeout=60,
        ).stdout  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def scalar(self, sql: str, **variables: str | int) -> str:
        rows = self.psql(sql, **variables)
        assert len(rows) == 1, f"{sql!r} returned {rows}"
        assert len(rows[0]) == 1, f"{sql!r} returned {rows}"
        return rows[0][0]
