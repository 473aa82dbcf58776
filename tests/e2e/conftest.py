"""The cluster tier: the chart installed in a kind cluster (see `make e2e`).

The tests share ONE release, installed by `make deploy` with the chart's
default values, and run in file order (test_01 ... test_11): each scenario
leaves the release as it found it, except the last ones, which uninstall it
(the dev loop) and reinstall it with Helm 3. The CloudNativePG package
(tests/e2e/cnpg) runs first, with a release of its own in a namespace of its
own, removed at its end.

Traffic that must follow the Service across pods comes from load pods inside
the cluster (loadpod.py); single requests go through `kubectl port-forward`.
Every scenario's figures land in tests/e2e/results/latest.json and in the
terminal summary as `FIGURES <scenario> {...}` lines.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import port_for
import pytest
from kubernetes import client, config

from tests.e2e.kube import KUBE_CONTEXT, KUBECTL, NAMESPACE, RELEASE, Cluster
from tests.e2e.loadpod import install_script
from tests.support.http import serving

RESULTS = Path(__file__).parent / "results" / "latest.json"
FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    try:
        config.load_kube_config(context=KUBE_CONTEXT)  # type: ignore[no-untyped-call]  # untyped upstream
    except Exception as exc:  # any failure here means there is no cluster to test
        pytest.fail(f"no kube context {KUBE_CONTEXT}: run `make e2e` (or `make kind-up deploy`): {exc}")
    fullname = RELEASE if "storefront" in RELEASE else f"{RELEASE}-storefront"
    return Cluster(client.CoreV1Api(), client.AppsV1Api(), client.BatchV1Api(), client.AutoscalingV2Api(), fullname)


@pytest.fixture(scope="session")
def fullname(cluster: Cluster) -> str:
    return cluster.fullname


@pytest.fixture(scope="session", autouse=True)
def loadgen_script(cluster: Cluster) -> None:
    install_script(cluster)


@contextmanager
def port_forward(target: str, remote_port: int, namespace: str = NAMESPACE) -> Iterator[str]:
    """`kubectl port-forward` on a free local port; yields the base URL."""
    local = port_for.select_random()
    command = [
        KUBECTL, "--context", KUBE_CONTEXT, "--namespace", namespace,
        "port-forward", target, f"{local}:{remote_port}", "--address", "127.0.0.1",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{local}"
    with serving(command, f"{base}/livez", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield base


@pytest.fixture
def api(cluster: Cluster) -> Iterator[str]:
    with port_forward(f"service/{cluster.fullname}", 80) as base:
        yield base


@pytest.fixture(scope="session")
def kept_release() -> dict[str, Any]:
    """What test_10 saw before `helm uninstall`, for test_11's reinstall."""
    return {}


class Figures:
    """`figures.record(key=value, ...)`: the numbers a scenario reports."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.values = FIGURES.setdefault(scenario, {})
        self.started = time.monotonic()

    def record(self, **values: Any) -> None:
        self.values.update(values)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    recorder = Figures(request.node.name)
    yield recorder
    recorder.values["seconds"] = round(time.monotonic() - recorder.started, 1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if FIGURES:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(FIGURES, indent=2, sort_keys=True, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("e2e figures (also in tests/e2e/results/latest.json)")
        for scenario, values in FIGURES.items():
            terminalreporter.write_line(f"FIGURES {scenario} {json.dumps(values, sort_keys=True, default=str)}")
