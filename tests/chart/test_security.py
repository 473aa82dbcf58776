"""What a security review of the chart's defaults asks for (issue 11):
secrets as files, least-privilege database roles, kept and re-applied
passwords, network policies, /metrics off the public routes, trusted proxies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.chart.conftest import (
    CHART,
    REPO,
    Manifest,
    RenderError,
    containers,
    env_of,
    one,
    pod_specs,
    render_text,
    secret_files,
)

Render = Callable[..., list[Manifest]]
SCENARIOS = [
    "ci/default-values.yaml",
    "ci/external-database-values.yaml",
    "ci/gitops-values.yaml",
    "ci/ha-values.yaml",
    "ci/minimal-values.yaml",
    "values-dev.yaml",
]
SECRETS = "/var/run/secrets/storefront"


def selected_by(policy: Manifest, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(key) == value for key, value in selector.items())


def component(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "storefront",
        "app.kubernetes.io/instance": "shop",
        "app.kubernetes.io/component": name,
    }


# --- secrets ---------------------------------------------------------------


@pytest.mark.parametrize("values", SCENARIOS)
def test_no_secret_reaches_a_pod_through_its_environment(rendered: Render, values: str) -> None:
    for name, spec in pod_specs(rendered(values)):
        for container in containers(spec):
            where = f"{name} {container['name']}"
            for item in container.get("env", []):
                assert "secretKeyRef" not in item.get("valueFrom", {}), f"{where}: {item['name']}"
            assert not [source for source in container.get("envFrom", []) if "secretRef" in source], where


def test_the_app_reads_its_secrets_from_files_in_secrets_dir(rendered: Render) -> None:
    manifests = rendered()
    config = one(manifests, "ConfigMap", "shop-storefront")["data"]
    assert config["SECRETS_DIR"] == SECRETS
    app_containers = {"api", "wait-for-schema", "migrate"}
    for name, spec in pod_specs(manifests):
        for container in containers(spec):
            if container["name"] in app_containers:
                app_containers.remove(container["name"])
                files = secret_files(spec, container)
                assert {f"{SECRETS}/SECRET_KEY", f"{SECRETS}/DATABASE_PASSWORD"} <= set(files), name
                assert all(path.startswith(SECRETS) for path in files), name
    assert not app_containers


def test_generated_secrets_are_kept_across_uninstall(rendered: Render) -> None:
    for secret in (m for m in rendered() if m["kind"] == "Secret"):
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", secret["metadata"]["name"]


def test_gitops_render_needs_no_lookup(helm_available: None) -> None:
    """With existingSecret everywhere nothing is generated: two renders (no
    cluster, so no `lookup`) are identical. Without, each render makes new
    passwords: the reason GitOps needs existingSecret."""
    gitops = ["-f", str(CHART / "ci" / "gitops-values.yaml")]
    first = render_text(*gitops)
    assert first == render_text(*gitops)
    assert "kind: Secret\n" not in first
    assert render_text() != render_text()


def test_gitops_render_mounts_the_named_secrets(rendered: Render) -> None:
    manifests = rendered("ci/gitops-values.yaml")
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    files = secret_files(spec, spec["containers"][0])
    assert files[f"{SECRETS}/DATABASE_PASSWORD"] == ("shop-postgresql", "password")
    assert files[f"{SECRETS}/REDIS_PASSWORD"] == ("shop-redis", "password")
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    assert secret_files(job, job["containers"][0])[f"{SECRETS}/DATABASE_PASSWORD"] == (
        "shop-postgresql",
        "owner-password",
    )
    postgres = one(manifests, "StatefulSet", "-postgresql")["spec"]["template"]["spec"]
    assert set(secret_files(postgres, postgres["containers"][0]).values()) == {
        ("shop-postgresql", "password"),
        ("shop-postgresql", "owner-password"),
    }


@pytest.mark.parametrize(
    "key", ["postgresql.auth.ownerPassword", "externalDatabase.owner.password", "externalDatabase.password"]
)
def test_plain_text_database_passwords_are_refused_in_production(rendered: Render, key: str) -> None:
    with pytest.raises(RenderError, match="plain-text secret in production"):
        rendered(set_values={key: "hunter2"})


# --- least privilege in the database ---------------------------------------


def test_api_connects_as_the_app_role_and_migrations_as_the_owner(rendered: Render) -> None:
    manifests = rendered()
    config = one(manifests, "ConfigMap", "shop-storefront")["data"]
    assert config["DATABASE_URL"] == "postgresql://storefront@shop-storefront-postgresql:5432/storefront"
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    migrate = job["containers"][0]
    assert env_of(migrate)["DATABASE_URL"]["value"] == (
        "postgresql://storefront_owner@shop-storefront-postgresql:5432/storefront"
    )
    assert secret_files(job, migrate)[f"{SECRETS}/DATABASE_PASSWORD"] == (
        "shop-storefront-postgresql",
        "owner-password",
    )
    api = one(manifests, "Deployment")["spec"]["template"]["spec"]
    for container in containers(api):
        assert secret_files(api, container)[f"{SECRETS}/DATABASE_PASSWORD"] == (
            "shop-storefront-postgresql",
            "password",
        )


def test_the_two_roles_must_differ(rendered: Render) -> None:
    with pytest.raises(RenderError, match="username and ownerUsername must differ"):
        rendered(set_values={"postgresql.auth.ownerUsername": "storefront"})


def test_external_database_with_separate_owner_credentials(rendered: Render) -> None:
    manifests = rendered("ci/external-database-values.yaml")
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    assert env_of(job["containers"][0])["DATABASE_URL"]["value"] == (
        "postgresql://shop_owner@db.example.internal:5432/shop?ssl=require"
    )
    assert secret_files(job, job["containers"][0])[f"{SECRETS}/DATABASE_PASSWORD"] == (
        "shop-database-owner",
        "password",
    )
    api = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert secret_files(api, api["containers"][0])[f"{SECRETS}/DATABASE_PASSWORD"] == ("shop-database", "password")


def test_external_database_with_one_pair_for_both(rendered: Render) -> None:
    manifests = rendered("ci/external-database-values.yaml", set_values={"externalDatabase.owner.username": ""})
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    assert env_of(job["containers"][0])["DATABASE_URL"]["value"] == (
        "postgresql://shop_api@db.example.internal:5432/shop?ssl=require"
    )
    assert secret_files(job, job["containers"][0])[f"{SECRETS}/DATABASE_PASSWORD"] == ("shop-database", "password")


def test_external_owner_password_shares_the_secret_of_the_app_by_default(rendered: Render) -> None:
    manifests = rendered(
        "ci/external-database-values.yaml",
        set_values={
            "externalDatabase.owner.existingSecret": "",
            "externalDatabase.owner.passwordKey": "owner-password",
        },
    )
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    assert secret_files(job, job["containers"][0])[f"{SECRETS}/DATABASE_PASSWORD"] == (
        "shop-database",
        "owner-password",
    )


def test_external_plain_text_credentials_in_development(rendered: Render) -> None:
    manifests = rendered(
        set_values={
            "environment": "development",
            "postgresql.enabled": "false",
            "externalDatabase.host": "db",
            "externalDatabase.password": "app-pw",
            "externalDatabase.owner.username": "owner",
            "externalDatabase.owner.password": "owner-pw",
        }
    )
    secret = one(manifests, "Secret", "-external-database")
    assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {
        "password": "app-pw",
        "owner-password": "owner-pw",
    }


def test_an_owner_without_a_password_is_refused(rendered: Render) -> None:
    with pytest.raises(RenderError, match=r"externalDatabase\.owner\.username needs"):
        rendered(
            "ci/external-database-values.yaml",
            set_values={
                "environment": "development",
                "externalDatabase.existingSecret": "",
                "externalDatabase.password": "app-pw",
                "externalDatabase.owner.existingSecret": "",
            },
        )


def test_bundled_postgresql_applies_roles_and_passwords_at_every_start(rendered: Render) -> None:
    manifests = rendered()
    statefulset = one(manifests, "StatefulSet", "-postgresql")
    spec = statefulset["spec"]["template"]["spec"]
    postgres = spec["containers"][0]
    assert postgres["lifecycle"]["postStart"]["exec"]["command"] == ["sh", "/opt/storefront/ensure-roles.sh"]
    env = env_of(postgres)
    assert env["STOREFRONT_OWNER_ROLE"]["value"] == "storefront_owner"
    assert env["STOREFRONT_APP_ROLE"]["value"] == "storefront"
    assert env["STOREFRONT_DATABASE"]["value"] == "storefront"
    # initdb's superuser password comes from a file; no POSTGRES_USER: the
    # superuser is `postgres`, not a role the app uses.
    assert env["POSTGRES_PASSWORD_FILE"]["value"] == "/var/run/secrets/postgresql/owner-password"
    assert "POSTGRES_PASSWORD" not in env
    assert "POSTGRES_USER" not in env
    assert set(secret_files(spec, postgres)) == {
        "/var/run/secrets/postgresql/password",
        "/var/run/secrets/postgresql/owner-password",
    }
    scripts = one(manifests, "ConfigMap", "-postgresql-scripts")["data"]
    for name in ("ensure-roles.sh", "ensure-roles.sql"):
        assert scripts[name].strip() == (CHART / "files" / f"postgresql-{name}").read_text().strip()
    mounts = {m["mountPath"]: m["name"] for m in postgres["volumeMounts"]}
    assert mounts["/opt/storefront"] == "scripts"
    # A new password or script restarts the server, whose start applies it.
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/secrets", "checksum/scripts"} <= set(annotations)


@pytest.mark.parametrize("values", SCENARIOS)
def test_every_pod_runs_with_a_uid_above_10000(rendered: Render, values: str) -> None:
    for name, spec in pod_specs(rendered(values)):
        context = spec["securityContext"]
        assert context["runAsUser"] >= 10000, name
        assert context["runAsGroup"] >= 10000, name
        assert context["fsGroup"] >= 10000, name


def test_redis_password_never_in_env_or_argv(rendered: Render) -> None:
    redis = one(rendered(), "StatefulSet", "-redis")["spec"]["template"]["spec"]
    container = redis["containers"][0]
    assert not container.get("env")
    assert not any("requirepass" in arg and "$(" in arg for arg in container["args"])
    assert "/run/redis/auth.conf" in container["command"][2]
    config_volume = next(v for v in redis["volumes"] if v["name"] == "config")
    assert config_volume["emptyDir"]["medium"] == "Memory"
    assert secret_files(redis, container) == {"/var/run/secrets/redis/password": ("shop-storefront-redis", "password")}


# --- network policies --------------------------------------------------------


def policies(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}


def ports(rule: dict[str, Any]) -> set[Any]:
    return {port["port"] for port in rule.get("ports", [])}


def test_network_policies_are_on_by_default_and_cover_every_pod(rendered: Render) -> None:
    manifests = rendered()
    found = policies(manifests)
    assert set(found) == {
        "shop-storefront-api",
        "shop-storefront-migrations",
        "shop-storefront-postgresql",
        "shop-storefront-redis",
    }
    for name, _ in pod_specs(manifests):
        workload = next(m for m in manifests if f"{m['kind']}/{m['metadata']['name']}" == name)
        if workload["kind"] == "Pod":
            continue  # the helm test pod: unrestricted, it only reads /readyz
        labels = workload["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in found.values() if selected_by(p, labels)]
        assert len(selecting) == 1, name
        assert set(selecting[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, name


def test_only_the_api_and_migrations_reach_the_data_stores(rendered: Render) -> None:
    found = policies(rendered())
    for name, allowed, port in (
        ("shop-storefront-postgresql", {"api", "migrations"}, 5432),
        ("shop-storefront-redis", {"api"}, 6379),
    ):
        spec = found[name]["spec"]
        [rule] = spec["ingress"]
        assert {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]} == allowed
        assert all(set(peer) == {"podSelector"} for peer in rule["from"])  # same namespace only
        assert ports(rule) == {port}
        assert spec["egress"] == []  # the data stores reach nothing


def test_api_takes_http_from_anywhere_and_metrics_from_monitoring(rendered: Render) -> None:
    spec = policies(rendered())["shop-storefront-api"]["spec"]
    by_port = {next(iter(ports(rule))): rule for rule in spec["ingress"]}
    assert set(by_port) == {"http", "metrics"}
    assert "from" not in by_port["http"]  # any source, on the HTTP port only
    assert by_port["metrics"]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_api_sources_can_be_restricted_and_helm_test_still_passes(rendered: Render) -> None:
    spec = policies(rendered("ci/ha-values.yaml"))["shop-storefront-api"]["spec"]
    http = next(rule for rule in spec["ingress"] if ports(rule) == {"http"})
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in http["from"]
    assert {"podSelector": {"matchLabels": component("test")}} in http["from"]


def test_api_egress_is_dns_and_the_data_stores(rendered: Render) -> None:
    egress = policies(rendered())["shop-storefront-api"]["spec"]["egress"]
    dns, postgres, redis = egress
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert postgres == {
        "to": [{"podSelector": {"matchLabels": component("postgresql")}}],
        "ports": [{"port": 5432, "protocol": "TCP"}],
    }
    assert redis == {
        "to": [{"podSelector": {"matchLabels": component("redis")}}],
        "ports": [{"port": 6379, "protocol": "TCP"}],
    }
    migrations = policies(rendered())["shop-storefront-migrations"]["spec"]
    assert migrations["ingress"] == []
    assert migrations["egress"] == [dns, postgres]


def test_egress_follows_the_configured_endpoints(rendered: Render) -> None:
    manifests = rendered(
        "ci/external-database-values.yaml",
        set_values={
            "tracing.endpoint": "http://otel-collector.observability:4318",
            "app.email.backend": "http",
            "app.email.apiUrl": "https://mail.example.com/v1/send",
        },
    )
    egress = policies(manifests)["shop-storefront-api"]["spec"]["egress"]
    assert [ports(rule) for rule in egress] == [{53}, {5432}, {6379}, {443}, {4318}]
    assert all("to" not in rule for rule in egress)  # host names: any address, on that port only


def test_network_policies_can_be_turned_off(rendered: Render) -> None:
    assert not policies(rendered(set_values={"networkPolicy.enabled": "false"}))


# --- exposure: /metrics, /docs, forwarded headers -------------------------------


def test_metrics_have_their_own_port_that_no_route_reaches(rendered: Render) -> None:
    manifests = rendered("ci/ha-values.yaml")
    config = one(manifests, "ConfigMap", "shop-storefront")["data"]
    api = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    container_ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert config["METRICS_PORT"] == str(container_ports["metrics"]) == "9090"
    service = next(m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"] == "shop-storefront")
    service_ports = {port["name"]: port for port in service["spec"]["ports"]}
    assert service_ports["metrics"]["targetPort"] == "metrics"
    for rule in one(manifests, "Ingress")["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"] == {"name": "http"}
    route = one(manifests, "HTTPRoute")
    for rule in route["spec"]["rules"]:
        assert [ref["port"] for ref in rule["backendRefs"]] == [service_ports["http"]["port"]]
    assert one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"


def test_the_metrics_port_must_differ_from_the_api_port(rendered: Render) -> None:
    with pytest.raises(RenderError, match="metricsPort must differ"):
        rendered(set_values={"server.metricsPort": "8000"})


def test_docs_follow_the_production_policy(rendered: Render) -> None:
    assert one(rendered(), "ConfigMap", "shop-storefront")["data"]["DOCS_ENABLED"] == "false"
    enabled = rendered(set_values={"app.docsEnabled": "true"})
    assert one(enabled, "ConfigMap", "shop-storefront")["data"]["DOCS_ENABLED"] == "true"


def test_forwarded_headers_only_from_trusted_proxies(rendered: Render) -> None:
    manifests = rendered()
    api = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--no-proxy-headers" in api["args"]
    assert not [arg for arg in api["args"] if "forwarded-allow-ips" in arg or arg == "--proxy-headers"]
    assert one(manifests, "ConfigMap", "shop-storefront")["data"]["TRUSTED_PROXIES"] == ""
    trusted = rendered(set_values={"trustedProxies": "{10.0.0.0/8,192.168.1.1}"})
    assert one(trusted, "ConfigMap", "shop-storefront")["data"]["TRUSTED_PROXIES"] == "10.0.0.0/8,192.168.1.1"


@pytest.mark.parametrize("proxy", ["*", "0.0.0.0/0 ", "proxy.example.com"])
def test_a_wildcard_or_a_name_is_not_a_trusted_proxy(rendered: Render, proxy: str) -> None:
    with pytest.raises(RenderError, match="trustedProxies"):
        rendered(set_values={"trustedProxies[0]": proxy})


def test_tracing_is_off_unless_an_endpoint_is_set(rendered: Render) -> None:
    config = one(rendered(), "ConfigMap", "shop-storefront")["data"]
    assert not [name for name in config if name.startswith("OTEL_")]
    config = one(rendered("ci/ha-values.yaml"), "ConfigMap", "shop-storefront")["data"]
    assert {name: value for name, value in config.items() if name.startswith("OTEL_")} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_SERVICE_NAME": "shop-storefront",
    }


def test_the_sampler_can_be_chosen(rendered: Render) -> None:
    manifests = rendered(
        set_values={
            "tracing.endpoint": "http://otel-collector.observability:4318",
            "tracing.sampler": "always_on",
            "tracing.samplerRatio": "0.25",
            "tracing.serviceName": "shop-api",
        }
    )
    config = one(manifests, "ConfigMap", "shop-storefront")["data"]
    assert config["OTEL_TRACES_SAMPLER"] == "always_on"
    assert config["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert config["OTEL_SERVICE_NAME"] == "shop-api"


def test_the_app_traces_as_the_chart_says(rendered: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OTEL_* variables the chart renders, read by the app's own set-up:
    the collector's HTTP endpoint and one new trace in ten."""
    from app.platform.tracing import provider_from_environment

    config = one(rendered("ci/ha-values.yaml"), "ConfigMap", "shop-storefront")["data"]
    for name, value in config.items():
        if name.startswith("OTEL_"):
            monkeypatch.setenv(name, value)
    provider = provider_from_environment("1.0.0")
    assert provider is not None
    try:
        assert provider.sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.1}")
        assert provider.resource.attributes["service.name"] == "shop-storefront"
    finally:
        provider.shutdown()


def test_uvicorn_writes_its_own_lines_as_json(rendered: Render) -> None:
    api = one(rendered(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    [log_config] = [arg for arg in api["args"] if arg.startswith("--log-config=")]
    # A path in the image's working directory, where the app's source is.
    assert (REPO / log_config.split("=", 1)[1]).is_file()
