"""The cluster tier: the chart installed in a kind cluster (see `make e2e`).

Tests talk to the cluster with the kubernetes client and kubectl, and to the
API through `kubectl port-forward` (one pod) or, for traffic that must follow
the Service across pods, from a pod inside the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import port_for
import pytest
from kubernetes import client, config

from tests.support.http import serving

# The CloudNativePG scenarios (tests/e2e/cnpg) have not yet run to the end on
# a kind cluster (the branch's helper never got the cluster): until they have,
# `make e2e` collects them only with E2E_CNPG=1, so an unproven package cannot
# fail every CI run. Remove this gate once `make e2e E2E_CNPG=1` passes.
collect_ignore = [] if os.environ.get("E2E_CNPG") == "1" else ["cnpg"]

KUBE_CONTEXT = os.environ.get("KUBE_CONTEXT", "kind-storefront")
NAMESPACE = os.environ.get("NAMESPACE", "storefront")
RELEASE = os.environ.get("RELEASE", "storefront")
KUBECTL = os.environ.get("KUBECTL", "kubectl")
HELM = os.environ.get("HELM", "helm")


@dataclass(frozen=True)
class Cluster:
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    autoscaling: client.AutoscalingV2Api

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [KUBECTL, "--context", KUBE_CONTEXT, "--namespace", NAMESPACE, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)

    def helm(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        command = [HELM, "--kube-context", KUBE_CONTEXT, "--namespace", NAMESPACE, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def api_pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=api"
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).to_dict()["items"]
        return [p for p in pods if p["metadata"]["deletion_timestamp"] is None]

    def pod_phase(self, name: str) -> str | None:
        pods = self.core.list_namespaced_pod(NAMESPACE, field_selector=f"metadata.name={name}").to_dict()["items"]
        return pods[0]["status"]["phase"] if pods else None

    def wait_rollout(self, kind: str, name: str, timeout: int = 300) -> None:
        self.kubectl("rollout", "status", f"{kind}/{name}", f"--timeout={timeout}s", timeout=timeout + 30)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    try:
        config.load_kube_config(context=KUBE_CONTEXT)  # type: ignore[no-untyped-call]  # untyped upstream
    except Exception as exc:  # any failure here means there is no cluster to test
        pytest.fail(f"no kube context {KUBE_CONTEXT}: run `make e2e` (or `make kind-up deploy`): {exc}")
    return Cluster(client.CoreV1Api(), client.AppsV1Api(), client.BatchV1Api(), client.AutoscalingV2Api())


@pytest.fixture(scope="session")
def fullname() -> str:
    return RELEASE if "storefront" in RELEASE else f"{RELEASE}-storefront"


def port_forward(target: str, remote_port: int) -> Iterator[str]:
    """`kubectl port-forward` on a free local port; yields the base URL."""
    local = port_for.select_random()
    command = [
        KUBECTL, "--context", KUBE_CONTEXT, "--namespace", NAMESPACE,
        "port-forward", target, f"{local}:{remote_port}", "--address", "127.0.0.1",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{local}"
    with serving(command, f"{base}/livez", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield base


@pytest.fixture
def api(cluster: Cluster, fullname: str) -> Iterator[str]:
    yield from port_forward(f"service/{fullname}", 80)


def run_pod_to_completion(cluster: Cluster, name: str, image: str, script: str, timeout: int = 300) -> dict[str, Any]:
    """Runs `python3 -c script` in a restricted pod; returns the JSON it prints last."""
    cluster.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true")
    overrides = {
        "apiVersion": "v1",
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "command": ["python3", "-c", script],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "32Mi"},
                        "limits": {"cpu": "300m", "memory": "128Mi"},
                    },
                }
            ],
        },
    }
    cluster.kubectl(
        "run", name, f"--image={image}", "--restart=Never", "--image-pull-policy=IfNotPresent",
        f"--overrides={json.dumps(overrides)}",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.pod_phase(name) in ("Succeeded", "Failed"):
            break
        time.sleep(2)
    logs = cluster.kubectl("logs", name).stdout
    cluster.kubectl("delete", "pod", name, "--wait=false")
    return dict(json.loads(logs.strip().splitlines()[-1]))
