"""The chart in `database.mode: cloudnativepg`, in a kind cluster.

One release for the whole package, in a namespace of its own under the Pod
Security Standard "restricted": the operator is installed (or found) with
`hack/airgap/airgap cnpg-install`, the chart with this directory's
values.yaml on top of the deploy values `make e2e` uses, and everything is
removed again at the end (KEEP_CNPG=1 keeps it for a look). Scenarios run in
file order; each leaves the Cluster healthy for the next.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cnpg.writer import writer_script
from tests.e2e.kube import HELM, KUBE_CONTEXT, KUBECTL
from tests.support.http import serving

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "storefront"
VALUES = Path(__file__).with_name("values.yaml")
AIRGAP_TOOL = REPO / "hack" / "airgap" / "airgap"
NAMESPACE = os.environ.get("CNPG_NAMESPACE", "storefront-cnpg")
RELEASE = "storefront"
FULLNAME = "storefront"
CLUSTER = f"{FULLNAME}-db"
POOLER = f"{CLUSTER}-pooler-rw"
IMAGE = os.environ.get("STOREFRONT_IMAGE", "")
# Where scenario figures go (the README and the CI log quote them).
REPORT = Path(os.environ.get("CNPG_E2E_REPORT", REPO / ".tools" / "e2e-cnpg-report.json"))


def run(
    command: list[str], timeout: float = 120, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, input=input_text)
    if check and result.returncode != 0:
        raise AssertionError(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Release:
    """The cloudnativepg-mode release and what the tests ask of it."""

    figures: dict[str, Any] = field(default_factory=dict)

    def kubectl(
        self, *args: str, timeout: float = 120, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([KUBECTL, "--context", KUBE_CONTEXT, "--namespace", NAMESPACE, *args], timeout, check, input_text)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def cluster(self) -> dict[str, Any]:
        return dict(self.json("cluster", CLUSTER))

    def primary(self) -> str:
        return str(self.cluster()["status"]["currentPrimary"])

    def wait_healthy(self, timeout: float = 300) -> dict[str, Any]:
        """Every instance ready, the primary settled, the Pooler's pods ready."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.cluster().get("status", {})
            healthy = (
                status.get("phase") == "Cluster in healthy state"
                and status.get("readyInstances") == status.get("instances")
                and status.get("currentPrimary") == status.get("targetPrimary")
            )
            if healthy and self.pooler_ready():
                return status
            time.sleep(2)
        raise AssertionError(f"Cluster {CLUSTER} not healthy within {timeout} s: {status}")

    def pooler_ready(self) -> bool:
        deployment = self.json("deployment", POOLER)
        return bool(deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"])

    def pods(self, selector: str) -> list[dict[str, Any]]:
        pods = self.json("pods", "-l", selector)["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def api_pods(self) -> list[dict[str, Any]]:
        return self.pods(f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=api")

    def api_restarts(self) -> dict[str, int]:
        return {
            p["metadata"]["name"]: sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", []))
            for p in self.api_pods()
        }

    def assert_no_api_pod_restarted(self, before: dict[str, int]) -> None:
        """Every API pod now was there `before` with the same restart count: no
        container restarted and no pod was replaced. A pod the HPA scaled in
        meanwhile (load from the earlier scenarios ending) is neither."""
        after = self.api_restarts()
        assert {name: before.get(name) for name in after} == after, (
            f"API pods restarted or were replaced: {before} -> {after}"
        )

    def pooler_pods(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.pods(f"cnpg.io/poolerName={POOLER}")]

    def psql(self, sql: str, database: str = "storefront", pod: str | None = None) -> str:
        """SQL as the `postgres` superuser over the primary's local socket (peer)."""
        target = pod or self.primary()
        command = ["exec", target, "-c", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        return self.kubectl(*command, "-d", database, "-c", sql).stdout.strip()

    def pgbouncer(self, pod: str, command: str) -> list[list[str]]:
        """A PgBouncer admin console command (SHOW POOLS, ...) in one pooler pod."""
        out = self.kubectl("exec", pod, "-c", "pgbouncer", "--", "psql", "-X", "-q", "-A", "-F", "\t", "-c", command)
        lines = [line for line in out.stdout.splitlines() if line and not line.startswith("(")]
        return [line.split("\t") for line in lines]

    def python_pod(
        self, name: str, script: str, timeout: float = 300, labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """`python3 -c script` in a restricted pod of the app image; the JSON it prints last."""
        self.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true")
        overrides = {
            "apiVersion": "v1",
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": name,
                        "image": IMAGE,
                        "command": ["python3", "-c", script],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                    }
                ],
            },
        }
        self.kubectl(
            "run", name, f"--image={IMAGE}", "--restart=Never", "--image-pull-policy=IfNotPresent",
            f"--overrides={json.dumps(overrides)}",
            *([f"--labels={','.join(f'{k}={v}' for k, v in labels.items())}"] if labels else []),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        phase = None
        while time.monotonic() < deadline:
            phase = self.json("pod", name)["status"].get("phase")
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(1)
        logs = self.kubectl("logs", name, check=False).stdout
        self.kubectl("delete", "pod", name, "--wait=false", check=False)
        assert phase == "Succeeded", f"pod {name} ended {phase}: {logs[-2000:]}"
        return dict(json.loads(logs.strip().splitlines()[-1]))

    def wait_running(self, pod: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}", check=False).stdout == "Running":
                return
            time.sleep(0.5)
        raise AssertionError(f"pod {pod} not running within {timeout} s")

    def orders_of(self, user_id: int) -> dict[str, tuple[int, int]]:
        """{idempotency key: (rows, an order id)} of one user, read on the primary."""
        rows = self.psql(
            "SELECT idempotency_key, count(*), min(id) FROM orders "  # noqa: S608  (an integer, from the API)
            f"WHERE user_id = {int(user_id)} AND idempotency_key IS NOT NULL GROUP BY 1"
        )
        orders = {}
        for line in rows.splitlines():
            key, count, order_id = line.split("|")
            orders[key] = (int(count), int(order_id))
        return orders

    def write_through(
        self,
        writer: Writer,
        name: str,
        duration: float,
        fault: Callable[[], object],
        fault_after: float = 10,
        follow_retry_after: bool = False,
        rate: float = 25,
    ) -> tuple[dict[str, Any], float]:
        """Runs a writer pod for `duration` s and calls `fault` `fault_after` s
        into it; returns the writer's outcomes and the fault's time."""
        script = writer_script(
            service=FULLNAME,
            token=writer.token,
            product_id=writer.product_id,
            rate=rate,
            duration=duration,
            prefix=name,
            follow_retry_after=follow_retry_after,
        )
        outcome: dict[str, Any] = {}
        failure: list[BaseException] = []

        def write() -> None:
            try:
                outcome.update(self.python_pod(f"e2e-{name}", script, timeout=duration + 180))
            except BaseException as exc:  # reported by the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        self.wait_running(f"e2e-{name}", timeout=120)
        time.sleep(fault_after)
        event_at = time.time()
        fault()
        thread.join()
        if failure:
            raise failure[0]
        return outcome, event_at

    def record(self, scenario: str, figures: dict[str, Any]) -> None:
        """Keeps a scenario's figures for the report file and prints them (-s, CI log)."""
        self.figures[scenario] = figures
        print(f"\n[cnpg e2e] {scenario}: {json.dumps(figures, sort_keys=True)}")


def airgap(*args: str, timeout: float = 1200) -> str:
    """hack/airgap/airgap for the cluster of KUBE_CONTEXT."""
    env = {**os.environ, "KIND_CLUSTER": KUBE_CONTEXT.removeprefix("kind-")}
    result = subprocess.run(
        [str(AIRGAP_TOOL), *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        raise AssertionError(f"airgap {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="package")
def cnpg() -> Iterator[Release]:
    assert IMAGE, "STOREFRONT_IMAGE is not set (make e2e sets it)"
    started = time.monotonic()
    airgap("cnpg-install")
    operator_seconds = time.monotonic() - started
    release = Release()
    namespace = run(
        [KUBECTL, "--context", KUBE_CONTEXT, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml"]
    ).stdout
    labelled = subprocess.run(
        [KUBECTL, "--context", KUBE_CONTEXT, "label", "--local", "-f", "-", "-o", "yaml",
         "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
         "pod-security.kubernetes.io/warn=restricted"],
        input=namespace, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    subprocess.run(
        [KUBECTL, "--context", KUBE_CONTEXT, "apply", "-f", "-"], input=labelled, text=True, check=True, timeout=60
    )
    args = ["upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += shlex.split(os.environ.get("DEPLOY_VALUES", ""))
    args += ["-f", str(VALUES), *shlex.split(airgap("cnpg-helm-flags"))]
    repository, _, tag = IMAGE.rpartition(":")
    args += ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--wait", "--timeout", "10m"]
    installed = time.monotonic()
    run([HELM, "--kube-context", KUBE_CONTEXT, *args], timeout=900)
    release.wait_healthy()
    release.record(
        "install",
        {
            "operator_ready_seconds": round(operator_seconds, 1),
            "release_ready_seconds": round(time.monotonic() - installed, 1),
        },
    )
    try:
        yield release
    finally:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(release.figures, indent=2, sort_keys=True) + "\n")
        if not os.environ.get("KEEP_CNPG"):
            # The namespace takes the release, the Cluster's PVCs and the
            # kept Secrets with it; the operator stays (cluster-wide, cheap).
            run([HELM, "--kube-context", KUBE_CONTEXT, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"],
                timeout=300, check=False)  # fmt: skip
            run([KUBECTL, "--context", KUBE_CONTEXT, "delete", "namespace", NAMESPACE, "--wait=true",
                 "--timeout=180s"], timeout=240, check=False)  # fmt: skip


@pytest.fixture
def api(cnpg: Release) -> Iterator[str]:
    """`kubectl port-forward` to the API Service; yields the base URL."""
    import port_for

    local = port_for.select_random()
    command = [
        KUBECTL, "--context", KUBE_CONTEXT, "--namespace", NAMESPACE,
        "port-forward", f"service/{FULLNAME}", f"{local}:80", "--address", "127.0.0.1",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{local}"
    with serving(command, f"{base}/livez", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield base


@pytest.fixture
def steady_api(cnpg: Release) -> Iterator[None]:
    """The API's replica count held where it is for one fault scenario.

    The scenarios assert that no API pod restarts or is replaced while the
    database fails over. The writer's load can move the HPA, and one rescale
    in the window replaces a pod for reasons that have nothing to do with the
    database (seen once: a pod gone and another new during a switchover)."""
    spec = cnpg.json("hpa", FULLNAME)["spec"]
    replicas = len(cnpg.api_pods())
    pin = {"spec": {"minReplicas": replicas, "maxReplicas": replicas}}
    cnpg.kubectl("patch", "hpa", FULLNAME, "--type=merge", "-p", json.dumps(pin))
    try:
        yield
    finally:
        back = {"spec": {"minReplicas": spec["minReplicas"], "maxReplicas": spec["maxReplicas"]}}
        cnpg.kubectl("patch", "hpa", FULLNAME, "--type=merge", "-p", json.dumps(back))


@dataclass(frozen=True)
class Writer:
    """A customer placing orders: its token and the product it buys."""

    token: str
    product_id: int
    user_id: int


@pytest.fixture
def writer(api: str) -> Writer:
    """A fresh account and a product with stock for every order a scenario sends."""
    suffix = f"{time.time_ns() % 10**12}"
    with httpx.Client(base_url=api, timeout=30) as http:
        user = http.post(
            "/users/",
            json={"email": f"w{suffix}@example.com", "username": f"w{suffix}", "password": "writer password 1"},
        )
        assert user.status_code == 201, user.text
        tokens = http.post("/auth/token", data={"username": f"w{suffix}", "password": "writer password 1"}).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        product = http.post("/products/", json={"name": f"Failover mug {suffix}", "price": "1.00", "stock": 1_000_000},
                            headers=auth)  # fmt: skip
        assert product.status_code == 201, product.text
    return Writer(token=tokens["access_token"], product_id=product.json()["id"], user_id=user.json()["id"])
