"""Render the chart with `helm template` and hand the objects to the tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "storefront"
HELM = os.environ.get("HELM", str(REPO / "bin" / "helm"))

Manifest = dict[str, Any]


class RenderError(Exception):
    pass


def helm_template(release: str, namespace: str, *args: str) -> str:
    """`helm template RELEASE charts/storefront --namespace NAMESPACE ARGS`: the YAML text."""
    command = [HELM, "template", release, str(CHART), "--namespace", namespace, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return result.stdout


def render(*values_files: str, set_values: dict[str, str] | None = None, release: str = "shop") -> list[Manifest]:
    args: list[str] = []
    for values_file in values_files:
        args += ["-f", str(CHART / values_file) if not os.path.isabs(values_file) else values_file]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    return [doc for doc in yaml.safe_load_all(helm_template(release, "shop", *args)) if doc]


@pytest.fixture(scope="session")
def helm_available() -> None:
    if not Path(HELM).exists():
        pytest.fail(f"helm not found at {HELM}: run `make tools`")


@pytest.fixture
def rendered(helm_available: None) -> Callable[..., list[Manifest]]:
    return render


def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"expected one {kind} *{name_suffix}, got {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    """Every pod spec in the render: workloads' templates and bare pods."""
    specs = []
    for manifest in manifests:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] == "Pod":
            specs.append((name, manifest["spec"]))
        elif manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append((name, manifest["spec"]["template"]["spec"]))
    return specs
