"""One-shot probe pods: a short Python script in the app's image that prints
one JSON line, run under the Pod Security Standard "restricted"."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import IMAGE, NAMESPACE, Cluster, wait_for

# Helpers every probe script can use: TCP reachability (a NetworkPolicy drop
# is a timeout, a closed port a refusal), HTTP status, DNS.
PRELUDE = """
import json, socket, urllib.error, urllib.request
def tcp(host, port, tries=3):
    for _ in range(tries):
        try:
            socket.create_connection((host, port), timeout=2).close()
            return True
        except OSError:
            pass
    return False
def http(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return [response.status, response.read(1_000_000).decode(errors="replace")]
    except urllib.error.HTTPError as exc:
        return [exc.code, ""]
    except OSError as exc:
        return [type(exc).__name__, ""]
def dns(name):
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, None)})
    except OSError:
        return []
"""


def run_probe(
    cluster: Cluster,
    name: str,
    script: str,
    namespace: str = NAMESPACE,
    labels: dict[str, str] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Runs PRELUDE + script (which must `print(json.dumps(...))` last)."""
    assert IMAGE, "STOREFRONT_IMAGE is not set (make e2e sets it)"
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"e2e.storefront/part": "probe", **(labels or {})}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", PRELUDE + script],
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
    cluster.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true", namespace=namespace)
    cluster.apply(manifest, namespace=namespace)
    try:

        def finished() -> str | None:
            pod = cluster.pod(name, namespace)
            return pod["status"]["phase"] if pod and pod["status"]["phase"] in ("Succeeded", "Failed") else None

        phase = wait_for(f"probe {name}", finished, timeout)
        logs = str(cluster.core.read_namespaced_pod_log(name, namespace))
        assert phase == "Succeeded", f"probe {name} failed:\n{logs}"
        return dict(json.loads(logs.strip().splitlines()[-1]))
    finally:
        try:
            cluster.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
