"""Scenario 8: NetworkPolicies on (the chart's default), enforced by the
cluster's policy engine (kube-network-policies in the air-gapped cluster)."""

from __future__ import annotations

import json

from tests.e2e.conftest import Figures
from tests.e2e.kube import NAMESPACE, Cluster
from tests.e2e.probes import PRELUDE, run_probe

MONITORING = "monitoring"


def test_the_api_reaches_its_data_stores_and_nothing_else(cluster: Cluster, fullname: str) -> None:
    pod = cluster.api_pods()[0]["metadata"]["name"]
    script = (
        PRELUDE + f"print(json.dumps({{'dns': dns('{fullname}-postgresql'), "
        f"'postgresql': tcp('{fullname}-postgresql', 5432), 'redis': tcp('{fullname}-redis', 6379), "
        "'kubernetes_api': tcp('kubernetes.default.svc', 443, tries=1)}))"
    )
    seen = json.loads(cluster.exec(pod, "api", "python3", "-c", script).strip().splitlines()[-1])
    assert seen["dns"], "the API pod cannot resolve names"
    assert seen["postgresql"] is True
    assert seen["redis"] is True
    assert seen["kubernetes_api"] is False, "egress is limited to DNS and the data stores"


def test_a_pod_without_the_apps_labels_reaches_only_the_http_port(
    cluster: Cluster, fullname: str, figures: Figures
) -> None:
    seen = run_probe(
        cluster,
        "e2e-netpol-stranger",
        f"print(json.dumps({{'dns': dns('{fullname}-postgresql'), 'dns_external': dns('kubernetes.default'), "
        f"'postgresql': tcp('{fullname}-postgresql', 5432), 'redis': tcp('{fullname}-redis', 6379), "
        f"'api_http': http('http://{fullname}/health')[0], 'api_metrics': tcp('{fullname}', 9090)}}))",
    )
    figures.record(**seen)
    assert seen["dns"], "DNS must keep working"
    assert seen["dns_external"], "DNS must keep working"
    assert seen["api_http"] == 200, "the probe's network works (the API's HTTP port admits anyone)"
    assert seen["postgresql"] is False, "PostgreSQL admits only the API and the migration Job"
    assert seen["redis"] is False, "Redis admits only the API"
    assert seen["api_metrics"] is False, "the metrics port admits only the monitoring namespace"


def test_metrics_are_served_on_the_metrics_port_to_the_monitoring_namespace(cluster: Cluster, fullname: str) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": MONITORING,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "e2e.storefront/part": "monitoring",
            },
        },
    }
    cluster.apply(namespace, namespace=None)
    try:
        service = f"{fullname}.{NAMESPACE}.svc"
        seen = run_probe(
            cluster,
            "e2e-scraper",
            f"m = http('http://{service}:9090/metrics'); h = http('http://{service}/metrics')\n"
            "print(json.dumps({'metrics_port': m[0], 'series': 'http_requests_total{' in m[1], 'http_port': h[0]}))",
            namespace=MONITORING,
        )
    finally:
        cluster.kubectl("delete", "namespace", MONITORING, "--wait=false", namespace=None, check=False)
    assert seen["metrics_port"] == 200
    assert seen["series"] is True
    assert seen["http_port"] == 404, "/metrics is not on the Service's http port"
