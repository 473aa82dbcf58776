"""Operating the release (issue 14): the Grafana dashboard and the alert
rules name only metrics the service exports (read from a live /metrics of the
app, started in-process), and every query parses (promtool). The alerts'
behaviour is unit-tested by `make chart-rules` (promtool test rules)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.chart.conftest import PROMTOOL, Manifest, RenderError, one

Render = Callable[..., list[Manifest]]

# Series the alerts read from kube-state-metrics, not from the service
# (documented in values.yaml under prometheusRule.kubeStateMetrics).
KUBE_STATE_METRICS = {"kube_pod_status_ready", "kube_job_failed"}
# What the dashboard must show (issue 14), by the metric families it reads.
DASHBOARD_MUST_READ = {
    "http_requests_total",  # request rate and errors per route
    "http_request_duration_seconds_bucket",  # latency per route
    "db_pool_checked_out",  # pool use
    "db_pool_wait_seconds_bucket",  # pool wait
    "event_loop_lag_seconds",
    "cache_hits_total",  # hit ratio
    "cache_misses_total",
    "cache_circuit_open",  # breaker state
    "process_start_time_seconds",  # replica count
    "process_cpu_seconds_total",  # CPU against the HPA target
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMQL_KEYWORDS |= {"offset", "inf", "nan", "Inf", "NaN"}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exported_series_names(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition can produce."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def live_metric_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """/metrics of the app itself, after a few requests so that labelled
    families have samples."""
    from tests.conftest import make_settings
    from tests.support.app import started

    database = tmp_path_factory.mktemp("app") / "metrics.db"

    async def scrape() -> str:
        async with started(make_settings(database_url=f"sqlite+aiosqlite:///{database}")) as app:
            transport = httpx.ASGITransport(app=app.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://storefront") as client:
                for path in ("/livez", "/readyz", "/products/", "/no-such-route"):
                    await client.get(path)
                response = await client.get("/metrics")
                response.raise_for_status()
                return response.text

    return exported_series_names(asyncio.run(scrape()))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (our queries' subset of the
    grammar: selectors, functions, aggregations with by/without, binary ops)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0) not in PROMQL_KEYWORDS:
            names.add(match.group(0))
    return names


def test_metric_names_reads_what_a_query_names() -> None:
    assert metric_names(
        'sum by (handler) (rate(http_requests_total{job="a",status=~"5.."}[5m])) / ignoring(x) '
        "histogram_quantile(0.99, sum by (le) (rate(db_pool_wait_seconds_bucket[5m]))) > 0.5 and on() vector(1)"
    ) == {"http_requests_total", "db_pool_wait_seconds_bucket"}


def promtool_parses(expressions: dict[str, str], tmp_path: Path) -> None:
    """Every expression, as a recording rule, through `promtool check rules`."""
    rules = {"groups": [{"name": "parse", "rules": [{"record": n, "expr": e} for n, e in expressions.items()]}]}
    rules_file = tmp_path / "parse.rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    if not Path(PROMTOOL).exists():
        pytest.fail(f"promtool not found at {PROMTOOL}: run `make tools`")
    result = subprocess.run([PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


# --- Grafana dashboard ---------------------------------------------------------------


def dashboard_of(manifests: list[Manifest]) -> tuple[Manifest, dict[str, Any]]:
    config_map = one(manifests, "ConfigMap", "-dashboard")
    [text] = config_map["data"].values()
    return config_map, json.loads(text)


def panel_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """{recording-rule-safe name: expression} of every panel target, with
    Grafana's interval variables as a Prometheus would get them."""
    queries = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
            queries[f"dashboard:panel{panel['id']}_{target['refId']}"] = expr
    return queries


def test_dashboard_is_a_configmap_the_grafana_sidecar_discovers(rendered: Render) -> None:
    assert not [m for m in rendered() if m["metadata"]["name"].endswith("-dashboard")]  # off by default
    config_map, dashboard = dashboard_of(rendered("ci/ha-values.yaml"))
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Shop"}
    assert len(dashboard["uid"]) <= 40
    assert dashboard["title"] == "Storefront / shop / shop-storefront"
    elsewhere = rendered(set_values={"grafanaDashboard.enabled": "true", "grafanaDashboard.namespace": "monitoring"})
    assert one(elsewhere, "ConfigMap", "-dashboard")["metadata"]["namespace"] == "monitoring"


def test_every_dashboard_query_parses(rendered: Render, tmp_path: Path) -> None:
    _, dashboard = dashboard_of(rendered("ci/ha-values.yaml"))
    queries = panel_queries(dashboard)
    assert len(queries) >= 15
    assert not [q for q in queries.values() if "__" in q.replace("$__", "")], "an unreplaced placeholder"
    promtool_parses(queries, tmp_path)


def test_dashboard_names_only_metrics_the_service_exports(rendered: Render, live_metric_names: set[str]) -> None:
    _, dashboard = dashboard_of(rendered("ci/ha-values.yaml"))
    read = set().union(*(metric_names(expr) for expr in panel_queries(dashboard).values()))
    assert read >= DASHBOARD_MUST_READ
    missing = sorted(read - live_metric_names)
    assert not missing, f"the dashboard reads metrics the service does not export: {missing}"


def test_dashboard_queries_select_this_release(rendered: Render) -> None:
    _, dashboard = dashboard_of(rendered("ci/ha-values.yaml"))
    for name, expr in panel_queries(dashboard).items():
        if metric_names(expr):
            selectors = re.findall(r"\{([^}]*)\}", expr)
            assert selectors, name
            assert all(s.startswith('job="shop-storefront",namespace="shop"') for s in selectors), name


def test_dashboard_draws_the_autoscaler_and_slo_from_the_values(rendered: Render) -> None:
    _, dashboard = dashboard_of(rendered("ci/ha-values.yaml"))  # HPA 3..12, CPU 250m at 70 %
    constants = {expr for expr in panel_queries(dashboard).values() if expr.startswith("vector(")}
    # HPA min and max, CPU target (0.25 x 0.7), latency threshold, error
    # budget (1 - 0.999), pool capacity (8 + 4 = 12, like the HPA max).
    assert constants == {"vector(3)", "vector(12)", "vector(0.175)", "vector(0.5)", "vector(0.001)"}
    _, fixed = dashboard_of(
        rendered(set_values={"grafanaDashboard.enabled": "true", "autoscaling.enabled": "false", "replicaCount": "4"})
    )
    assert {"vector(4)"} <= set(panel_queries(fixed).values())


# --- PrometheusRule --------------------------------------------------------------------


def rule_expressions(manifests: list[Manifest]) -> dict[str, str]:
    rule = one(manifests, "PrometheusRule")
    return {r.get("alert") or r["record"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_is_optional_and_labelled(rendered: Render) -> None:
    assert not [m for m in rendered() if m["kind"] == "PrometheusRule"]
    rule = one(rendered("ci/ha-values.yaml"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "StorefrontAvailabilityBudgetBurnFast",
        "StorefrontAvailabilityBudgetBurnSlow",
        "StorefrontLatencyBudgetBurnFast",
        "StorefrontLatencyBudgetBurnSlow",
        "StorefrontDatabasePoolSaturated",
        "StorefrontDatabasePoolTimeouts",
        "StorefrontEventLoopLag",
        "StorefrontCacheCircuitOpen",
        "StorefrontReadinessFlapping",
        "StorefrontMigrationJobFailed",
    }
    assert all(a["labels"]["team"] == "shop" for a in alerts)


def test_kube_state_metrics_alerts_can_be_left_out(rendered: Render) -> None:
    manifests = rendered("ci/ha-values.yaml", set_values={"prometheusRule.kubeStateMetrics.enabled": "false"})
    names = set().union(*(metric_names(e) for e in rule_expressions(manifests).values()))
    assert not names & KUBE_STATE_METRICS


def test_slo_targets_come_from_the_values(rendered: Render, tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("prometheusRule: {slo: {availabilityTarget: 0.995, latencyThresholdSeconds: '0.25'}}\n")
    manifests = rendered("ci/ha-values.yaml", str(slo))
    expressions = rule_expressions(manifests)
    assert "(14.4 * (1 - 0.995))" in expressions["StorefrontAvailabilityBudgetBurnFast"]
    assert 'le="0.25"' in expressions["storefront:slo_latency_errors:ratio_rate1h"]


def test_a_latency_threshold_between_buckets_is_refused(rendered: Render) -> None:
    with pytest.raises(RenderError, match="latencyThresholdSeconds"):
        rendered(set_values={"prometheusRule.enabled": "true", "prometheusRule.slo.latencyThresholdSeconds": "0.3"})


def test_alert_rules_name_only_exported_metrics(rendered: Render, live_metric_names: set[str]) -> None:
    read = set().union(*(metric_names(e) for e in rule_expressions(rendered("ci/ha-values.yaml")).values()))
    recorded = {name for name in rule_expressions(rendered("ci/ha-values.yaml")) if ":" in name}
    missing = sorted(read - live_metric_names - KUBE_STATE_METRICS - recorded)
    assert not missing, f"the alert rules read metrics the service does not export: {missing}"


def test_fractions_can_be_given_with_set(rendered: Render) -> None:
    """`--set` passes 0.995 as a string: the schema takes numeric strings too."""
    manifests = rendered(
        set_values={"prometheusRule.enabled": "true", "prometheusRule.slo.availabilityTarget": "0.995"}
    )
    assert "(14.4 * (1 - 0.995))" in rule_expressions(manifests)["StorefrontAvailabilityBudgetBurnFast"]
    with pytest.raises(RenderError, match="availabilityTarget"):
        rendered(set_values={"prometheusRule.slo.availabilityTarget": "1.5"})
