"""Unit tests on the rendered chart: what a cluster would be given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import (
    CHART,
    REPO,
    SCENARIOS,
    Manifest,
    RenderError,
    containers,
    env_of,
    helm_template,
    one,
    pod_specs,
    secret_files,
)

Render = Callable[..., list[Manifest]]
SECRETS = "/var/run/secrets/storefront"


@pytest.mark.parametrize("values", SCENARIOS)
def test_every_pod_meets_the_restricted_pod_security_standard(rendered: Render, values: str) -> None:
    for name, spec in pod_specs(rendered(values)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        assert all("hostPath" not in volume for volume in spec.get("volumes", [])), name
        for container in containers(spec):
            security = container["securityContext"]
            where = f"{name} {container['name']}"
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security.get("privileged") is not True, where
            assert security["seccompProfile"]["type"] == "RuntimeDefault", where
            assert container.get("resources", {}).get("limits"), f"{where}: no resource limits"


@pytest.mark.parametrize("values", [*SCENARIOS, "values-dev.yaml", "values-airgap.yaml"])
def test_every_image_has_a_pinned_tag(rendered: Render, values: str) -> None:
    for name, spec in pod_specs(rendered(values)):
        for container in containers(spec):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository, f"{name}: {image} has no repository"
            assert tag, f"{name}: {image} has no tag"
            assert tag != "latest", f"{name}: {image}"


def test_probes_hit_the_right_paths(rendered: Render) -> None:
    api = one(rendered(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert api["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]


def test_rollout_never_drops_below_the_wanted_pods(rendered: Render) -> None:
    strategy = one(rendered(), "Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_grace_period_covers_prestop_drain_and_uvicorn_timeout(rendered: Render) -> None:
    spec = one(rendered("ci/ha-values.yaml"), "Deployment")["spec"]["template"]["spec"]
    api = spec["containers"][0]
    graceful = int(next(a for a in api["args"] if a.startswith("--timeout-graceful-shutdown=")).split("=")[1])
    pre_stop = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    config = one(rendered("ci/ha-values.yaml"), "ConfigMap", "storefront")["data"]
    drain = int(config["SHUTDOWN_DRAIN_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + graceful
    assert (pre_stop, drain, graceful) == (5, 3, 20)


def test_a_too_short_grace_period_is_refused(rendered: Render) -> None:
    with pytest.raises(RenderError, match="terminationGracePeriodSeconds=10 is shorter"):
        rendered(set_values={"server.terminationGracePeriodSeconds": "10"})


def test_hpa_targets_the_deployment(rendered: Render) -> None:
    manifests = rendered("ci/ha-values.yaml")
    hpa = one(manifests, "HorizontalPodAutoscaler")
    deployment = one(manifests, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpa["spec"]["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert "replicas" not in deployment["spec"]  # the HPA owns it


def test_without_autoscaling_the_deployment_sets_replicas(rendered: Render) -> None:
    manifests = rendered("ci/minimal-values.yaml")
    assert not [m for m in manifests if m["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]
    assert one(manifests, "Deployment")["spec"]["replicas"] == 1


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_service_and_pdb_select_exactly_the_api_pods(rendered: Render) -> None:
    manifests = rendered()
    pod_labels = {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    deployment = one(manifests, "Deployment")["metadata"]["name"]
    service = next(m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"] == deployment)
    pdb = one(manifests, "PodDisruptionBudget")
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        selected = {name for name, labels in pod_labels.items() if _matches(selector, labels)}
        assert selected == {deployment}
    assert one(manifests, "Deployment")["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    # Selectors use immutable labels only: no version, no chart.
    assert set(service["spec"]["selector"]) == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    }


@pytest.mark.parametrize(
    ("overrides", "fits"),
    [
        ({}, True),  # 7 pods x 10 = 70 <= 100 - 10
        ({"autoscaling.maxReplicas": "8"}, True),  # 9 x 10 = 90: exactly the budget
        ({"autoscaling.maxReplicas": "9"}, False),  # 10 x 10 = 100 > 90
        ({"database.pool.size": "10", "database.pool.maxOverflow": "10"}, False),
        ({"postgresql.maxConnections": "300", "autoscaling.maxReplicas": "20"}, True),
        ({"autoscaling.enabled": "false", "replicaCount": "9"}, False),
    ],
)
def test_connection_budget_guard(rendered: Render, overrides: dict[str, str], fits: bool) -> None:
    if fits:
        rendered(set_values=overrides)
        return
    with pytest.raises(RenderError, match="database connection budget exceeded"):
        rendered(set_values=overrides)


def test_postgresql_gets_the_max_connections_the_budget_assumes(rendered: Render) -> None:
    postgres = one(rendered(set_values={"postgresql.maxConnections": "250"}), "StatefulSet", "-postgresql")
    args = postgres["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "max_connections=250" in args


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        ({"replicaCount": "two"}, "want integer"),
        ({"unknownKey": "1"}, "additional properties 'unknownKey' not allowed"),
        ({"postgresql.auth.typo": "1"}, "additional properties 'typo' not allowed"),
        ({"image.tag": "latest"}, "image/tag"),
        ({"environment": "staging"}, "environment"),
        ({"database.pool.size": "0"}, "pool/size"),
        ({"service.type": "Bogus"}, "service/type"),
        ({"app.email.backend": "smtp"}, "email/backend"),
    ],
)
def test_bad_values_are_rejected_by_the_schema(rendered: Render, set_values: dict[str, str], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        rendered(set_values=set_values)


@pytest.mark.parametrize("key", ["secrets.secretKey", "postgresql.auth.password", "redis.auth.password"])
def test_plain_text_secrets_are_refused_in_production(rendered: Render, key: str) -> None:
    with pytest.raises(RenderError, match="plain-text secret in production"):
        rendered(set_values={key: "hunter2"})
    rendered(set_values={key: "hunter2", "environment": "development"})


def test_generated_secrets_feed_the_app_as_files(rendered: Render) -> None:
    manifests = rendered()
    secrets = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Secret"}
    assert set(secrets) == {"shop-storefront", "shop-storefront-postgresql", "shop-storefront-redis"}
    assert len(secrets["shop-storefront"]["data"]["SECRET_KEY"]) >= 48
    assert set(secrets["shop-storefront-postgresql"]["data"]) == {"password", "owner-password"}
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    for container in containers(spec):  # the API and its wait-for-schema init container
        assert secret_files(spec, container) == {
            f"{SECRETS}/SECRET_KEY": ("shop-storefront", "SECRET_KEY"),
            f"{SECRETS}/DATABASE_PASSWORD": ("shop-storefront-postgresql", "password"),
            f"{SECRETS}/REDIS_PASSWORD": ("shop-storefront-redis", "password"),
        }, container["name"]
    config = one(manifests, "ConfigMap", "shop-storefront")["data"]
    assert config["SECRETS_DIR"] == SECRETS
    assert config["DATABASE_URL"] == "postgresql://storefront@shop-storefront-postgresql:5432/storefront"
    assert config["REDIS_URL"] == "redis://shop-storefront-redis:6379/0"
    assert "password" not in " ".join(config.values()).lower()


def test_existing_secrets_are_used_and_none_rendered(rendered: Render) -> None:
    manifests = rendered("ci/external-database-values.yaml")
    assert not [m for m in manifests if m["kind"] == "Secret"]
    assert not [m for m in manifests if m["kind"] == "StatefulSet"]
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert secret_files(spec, spec["containers"][0]) == {
        f"{SECRETS}/SECRET_KEY": ("shop-api-secrets", "SECRET_KEY"),
        f"{SECRETS}/SECRET_KEY_PREVIOUS": ("shop-api-secrets", "SECRET_KEY_PREVIOUS"),
        f"{SECRETS}/EMAIL_API_TOKEN": ("shop-api-secrets", "EMAIL_API_TOKEN"),
        f"{SECRETS}/DATABASE_PASSWORD": ("shop-database", "password"),
        f"{SECRETS}/REDIS_PASSWORD": ("shop-redis", "password"),
    }
    config = one(manifests, "ConfigMap", "storefront")["data"]
    assert config["DATABASE_URL"] == "postgresql://shop_api@db.example.internal:5432/shop?ssl=require"
    assert config["REDIS_URL"] == "rediss://cache.example.internal:6379/0"


def test_config_changes_roll_the_pods(rendered: Render) -> None:
    def checksum(**overrides: str) -> str:
        template = one(rendered(set_values=overrides), "Deployment")["spec"]["template"]
        annotation: str = template["metadata"]["annotations"]["checksum/config"]
        return annotation

    assert checksum() == checksum()
    assert checksum() != checksum(**{"app.logLevel": "DEBUG"})


def test_migration_job_is_named_by_what_it_runs(rendered: Render) -> None:
    def job_name(**overrides: str) -> str:
        name: str = one(rendered(set_values=overrides), "Job")["metadata"]["name"]
        return name

    assert job_name() == job_name()  # an unchanged upgrade leaves the Job alone
    assert job_name() != job_name(**{"image.tag": "0.2.0"})  # a new image migrates again
    assert job_name() != job_name(**{"database.pool.size": "6"})  # so does a config change
    assert len(job_name(fullnameOverride="x" * 52)) <= 63


def test_migration_job_and_schema_wait(rendered: Render) -> None:
    manifests = rendered()
    job = one(manifests, "Job")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert env_of(migrate)["DB_WAIT_SECONDS"]["value"] == "300"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    init = one(manifests, "Deployment")["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-schema"]
    assert init[0]["command"][:4] == ["python3", "-m", "app.ops.schema", "wait"]


def test_dev_mode_syncs_source_without_a_writable_root(rendered: Render) -> None:
    spec = one(rendered("values-dev.yaml", set_values={"devMode": "true"}), "Deployment")["spec"]["template"]["spec"]
    api = spec["containers"][0]
    assert "--reload" in api["args"]
    assert {"name": "source", "mountPath": "/app/app"} in api["volumeMounts"]
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    with pytest.raises(RenderError, match="devMode"):
        rendered(set_values={"devMode": "true"})  # environment: production


def test_airgap_values_switch_only_the_data_store_images(rendered: Render) -> None:
    airgap = yaml.safe_load((CHART / "values-airgap.yaml").read_text())
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in rendered("values-airgap.yaml")
        if m["kind"] == "StatefulSet"
    }
    assert images == {
        f"shop-storefront-{name}": f"{airgap[name]['image']['repository']}:{airgap[name]['image']['tag']}"
        for name in ("postgresql", "redis")
    }
    # ... and, for database.mode=cloudnativepg, the operand and pooler images.
    assert set(airgap) == {"postgresql", "redis", "cloudnativepg"}


def test_plain_manifests_are_in_sync_with_the_chart(helm_available: None) -> None:
    """k8s/storefront.yaml is what `make manifests` renders now."""
    rendered = helm_template(
        "storefront", "storefront", "--skip-tests", "-f", str(REPO / "k8s" / "manifests-values.yaml")
    )
    committed = (REPO / "k8s" / "storefront.yaml").read_text()
    # Compared as objects: Helm 4 and Helm 3 space documents differently.
    assert list(yaml.safe_load_all(rendered)) == list(yaml.safe_load_all(committed)), (
        "k8s/storefront.yaml is stale: run `make manifests`"
    )
    assert "kind: Secret" not in committed


@pytest.mark.parametrize("values", [*SCENARIOS, "values-dev.yaml"])
def test_the_app_accepts_the_rendered_configuration(
    rendered: Render, values: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ConfigMap, read by the app's own Settings: a value Helm renders in a
    form pydantic refuses (1.2096e+06 for an integer) fails here, not in a pod."""
    from app.platform.config import Settings

    config = one(rendered(values), "ConfigMap", "storefront")["data"]
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    # The secrets as the pod has them: files in SECRETS_DIR (and, for an app
    # that does not read SECRETS_DIR yet, the one it needs in the environment).
    (tmp_path / "SECRET_KEY").write_text("s" * 48)
    (tmp_path / "DATABASE_PASSWORD").write_text("p" * 24)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "s" * 48)
    settings = Settings()
    assert settings.refresh_token_ttl_seconds == 1209600
    assert settings.max_body_bytes == 1048576
    assert settings.sqlalchemy_url.drivername == "postgresql+asyncpg"
