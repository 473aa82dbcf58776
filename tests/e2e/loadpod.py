"""Load from inside the cluster: a pod runs loadgen/storefront_load.py.

The pod runs the app's own image (Python and httpx; nothing to pull), under
the Pod Security Standard "restricted" like everything in the namespace, on
the control-plane node (so draining a worker never evicts it). It carries
none of the chart's labels: the chart's NetworkPolicy lets any pod reach the
API's HTTP port, and nothing else of the release.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import IMAGE, NAMESPACE, Cluster, wait_for

SCRIPT = Path(__file__).parent / "loadgen" / "storefront_load.py"
CONFIGMAP = "e2e-loadgen"
MOUNT = "/opt/loadgen"
# On the pod's own emptyDir: `touch` it to end the run.
STOP_FILE = "/tmp/stop"  # noqa: S108


def install_script(cluster: Cluster) -> None:
    """The ConfigMap that carries the script (replaced on every session)."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "labels": {"e2e.storefront/part": "loadgen"}},
        "data": {SCRIPT.name: SCRIPT.read_text()},
    }
    cluster.apply(body)


def pod_manifest(name: str, plan: dict[str, Any], cpu_limit: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"e2e.storefront/part": "load"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "load",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", f"{MOUNT}/{SCRIPT.name}"],
                    "env": [{"name": "LOAD_PLAN", "value": json.dumps(plan)}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": cpu_limit, "memory": "384Mi"},
                    },
                    "volumeMounts": [
                        {"name": "script", "mountPath": MOUNT, "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  (an emptyDir of the pod),
                    ],
                }
            ],
            "volumes": [
                {"name": "script", "configMap": {"name": CONFIGMAP}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
            ],
        },
    }


class LoadPod:
    """`with LoadPod(cluster, "e2e-writer", plan) as load:` starts the pod and
    waits until its setup is done; `load.stop()` asks it to finish, and
    `load.result()` waits for its summary."""

    def __init__(self, cluster: Cluster, name: str, plan: dict[str, Any], cpu_limit: str = "500m") -> None:
        assert IMAGE, "STOREFRONT_IMAGE is not set (make e2e sets it)"
        self.cluster = cluster
        self.name = name
        self.plan = {"base_url": f"http://{cluster.fullname}", "stop_file": STOP_FILE, **plan}
        self.cpu_limit = cpu_limit
        self.ready: dict[str, Any] = {}
        self._result: dict[str, Any] | None = None

    def __enter__(self) -> LoadPod:
        self.cluster.kubectl("delete", "pod", self.name, "--ignore-not-found", "--wait=true")
        self.cluster.apply(pod_manifest(self.name, self.plan, self.cpu_limit))
        self.ready = wait_for(f"{self.name} to finish its setup", lambda: self._marker("LOAD-READY"), timeout=180)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.cluster.kubectl("delete", "pod", self.name, "--ignore-not-found", "--wait=false", check=False)

    def _logs(self) -> str:
        try:
            return str(self.cluster.core.read_namespaced_pod_log(self.name, NAMESPACE, container="load"))
        except ApiException:
            return ""  # not started yet

    def _marker(self, marker: str) -> dict[str, Any] | None:
        pod = self.cluster.pod(self.name)
        phase = pod["status"]["phase"] if pod else None
        logs = self._logs()
        for line in reversed(logs.splitlines()):
            if line.startswith(marker + " "):
                return dict(json.loads(line[len(marker) + 1 :]))
        if phase in ("Succeeded", "Failed"):
            raise AssertionError(f"{self.name} ended ({phase}) without {marker}:\n{logs[-3000:]}")
        return None

    def stop(self) -> None:
        """Asks the generator to finish its current requests and report."""
        self.cluster.exec(self.name, "load", "python3", "-c", f"open({STOP_FILE!r}, 'w').close()")

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        if self._result is None:
            limit = timeout if timeout is not None else float(self.plan.get("max_seconds", 120)) + 60
            self._result = wait_for(f"{self.name} to report", lambda: self._marker("LOAD-RESULT"), limit)
        return self._result

    def finish(self) -> dict[str, Any]:
        self.stop()
        return self.result(timeout=60)


def codes(result: dict[str, Any], kind: str | None = None) -> dict[str, int]:
    """Outcome counts of one request kind ("write", "read") or of all."""
    total: dict[str, int] = {}
    for name, counts in result["codes"].items():
        if kind is None or name == kind:
            for outcome, n in counts.items():
                total[outcome] = total.get(outcome, 0) + n
    return total


def failures(counts: dict[str, int], allowed: tuple[str, ...] = ("429",)) -> dict[str, int]:
    """Everything but 2xx and the allowed outcomes (e.g. transport errors, 5xx)."""
    return {k: v for k, v in counts.items() if not (k.startswith("2") or k in allowed)}


def server_errors(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("5"))


def wait_started(seconds: float = 3.0) -> None:
    """A little traffic before a disruption starts, so it begins mid-stream."""
    time.sleep(seconds)


# Reads that touch every layer: a cached product, a database page, the cached
# stats, and a route that touches neither.
READ_PATHS = ["/products/{product}", "/products/?limit=5", "/stats", "/health"]


def steady_plan(seconds: int, writes_per_second: float = 10, reads_per_second: float = 10) -> dict[str, Any]:
    """Order writes with Idempotency-Keys plus reads, at a steady pace."""
    return {
        "max_seconds": seconds,
        "max_requests": int(seconds * (writes_per_second + reads_per_second) * 1.5) + 100,
        "setup": {"products": 3, "stock": 1_000_000},
        "writers": {"concurrency": 2, "rate": writes_per_second, "retry": True},
        "readers": {"concurrency": 2, "rate": reads_per_second, "paths": READ_PATHS},
    }
