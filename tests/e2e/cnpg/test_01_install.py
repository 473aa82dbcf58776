"""Scenario 1, install: the chart in cloudnativepg mode under PSS restricted;
the Cluster healthy, migrations run once, the contract smoke through the Pooler."""

from __future__ import annotations

import time

import httpx

from tests.e2e.cnpg.conftest import CLUSTER, NAMESPACE, POOLER, REPO, Release, run
from tests.e2e.kube import KUBE_CONTEXT, KUBECTL


def test_the_namespaces_enforce_pod_security_restricted(cnpg: Release) -> None:
    for namespace in (NAMESPACE, "cnpg-system"):
        labels = run([KUBECTL, "--context", KUBE_CONTEXT, "get", "namespace", namespace, "-o",
                      "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"]).stdout  # fmt: skip
        assert labels == "restricted", namespace
    operator = run([KUBECTL, "--context", KUBE_CONTEXT, "-n", "cnpg-system", "get", "deployment",
                    "cnpg-controller-manager", "-o", "jsonpath={.status.readyReplicas}"]).stdout  # fmt: skip
    assert operator == "1"


def test_three_instances_on_three_nodes_with_a_synchronous_standby(cnpg: Release) -> None:
    status = cnpg.wait_healthy()
    assert status["instances"] == status["readyInstances"] == 3
    instances = cnpg.pods(f"cnpg.io/cluster={CLUSTER},cnpg.io/podRole=instance")
    assert len({pod["spec"]["nodeName"] for pod in instances}) == 3, "instances share a node"
    assert cnpg.psql("SHOW server_version_num", database="postgres").startswith("17")
    # Quorum commit: a commit waits for one of the two standbys.
    assert cnpg.psql("SHOW synchronous_standby_names", database="postgres").startswith("ANY 1 (")
    states = cnpg.psql("SELECT sync_state FROM pg_stat_replication ORDER BY 1", database="postgres").split()
    assert states == ["quorum", "quorum"]


def test_migrations_ran_once_as_the_owner_against_the_primary(cnpg: Release) -> None:
    jobs = cnpg.json("jobs", "-l", "app.kubernetes.io/component=migrations")["items"]
    assert [(job["status"].get("succeeded"), job["status"].get("failed")) for job in jobs] == [(1, None)]
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    url = {env["name"]: env.get("value") for env in container["env"]}["DATABASE_URL"]
    assert url == f"postgresql://storefront_owner@{CLUSTER}-rw:5432/storefront"
    applied = cnpg.psql("SELECT count(*) FROM alembic_revision_history")
    revisions = len(list((REPO / "migrations" / "versions").glob("*.py")))
    assert int(applied) == revisions
    assert cnpg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'") == "storefront_owner"


def test_the_app_role_has_dml_only(cnpg: Release) -> None:
    privileges = cnpg.psql(
        "SELECT has_table_privilege('storefront', 'orders', 'INSERT'), "
        "has_table_privilege('storefront', 'orders', 'TRUNCATE'), "
        "has_schema_privilege('storefront', 'public', 'CREATE'), "
        "(SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'storefront'), "
        "(SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'storefront_owner'), "
        "(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'storefront')"
    )
    assert privileges == "t|f|f|f|f|storefront_owner"


def test_the_contract_smoke_passes_through_the_pooler(cnpg: Release, api: str) -> None:
    with httpx.Client(base_url=api, timeout=15) as http:
        assert http.get("/readyz").json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}
        user = {"email": "cnpg@example.com", "username": "cnpg", "password": "through the pooler"}
        assert http.post("/users/", json=user).status_code == 201
        tokens = http.post("/auth/token", data={"username": "cnpg", "password": "through the pooler"}).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        product = http.post("/products/", json={"name": "Pooled mug", "price": "12.50", "stock": 5}, headers=auth)
        assert product.status_code == 201
        product_id = product.json()["id"]
        assert http.get(f"/products/{product_id}").headers["x-cache"] == "MISS"
        assert http.get(f"/products/{product_id}").headers["x-cache"] == "HIT"
        order = http.post("/orders/", json={"items": [{"product_id": product_id, "quantity": 2}]}, headers=auth)
        assert order.status_code == 201
        assert order.json()["total"] == "25.00"
        assert http.get(f"/products/{product_id}").json()["stock"] == 3
        assert http.get("/stats").json()["orders"] >= 1

    # The app's server connections come from PgBouncer's pods, none from the API's.
    pooler_ips = {pod["status"]["podIP"] for pod in cnpg.pods(f"cnpg.io/poolerName={POOLER}")}
    api_ips = {pod["status"]["podIP"] for pod in cnpg.api_pods()}
    deadline = time.monotonic() + 30
    sources: set[str] = set()
    while time.monotonic() < deadline and not sources:
        sources = set(
            cnpg.psql(
                "SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
                "WHERE usename = 'storefront' AND client_addr IS NOT NULL"
            ).split()
        )
        time.sleep(1)
    assert sources, "no server connection of the app role"
    assert sources <= pooler_ips
    assert not sources & api_ips
    clients = [row for pod in cnpg.pooler_pods() for row in cnpg.pgbouncer(pod, "SHOW CLIENTS")[1:]]
    assert any(row[1] == "storefront" for row in clients), clients
