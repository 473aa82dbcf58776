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
PROMTOOL = os.environ.get("PROMTOOL", str(REPO / "bin" / "promtool"))

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


def render_text(*args: str) -> str:
    """`helm template shop charts/storefront --namespace shop ARGS` as text."""
    return helm_template("shop", "shop", *args)


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


def containers(spec: Manifest) -> list[Manifest]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


def secret_files(spec: Manifest, container: Manifest) -> dict[str, tuple[str, str]]:
    """Files the container sees from Secrets: {mounted path: (secret, key)}."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    files: dict[str, tuple[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})  # none: a volumeClaimTemplate
        sources = [source["secret"] for source in volume.get("projected", {}).get("sources", []) if "secret" in source]
        if "secret" in volume:
            sources.append({"name": volume["secret"]["secretName"], "items": volume["secret"].get("items", [])})
        for source in sources:
            for item in source.get("items", []):
                files[f"{mount['mountPath']}/{item['path']}"] = (source["name"], item["key"])
    return files
