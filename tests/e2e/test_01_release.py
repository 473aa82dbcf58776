"""The installed release (chart defaults, Helm 4): admitted under PSS restricted,
ready, hardened, least-privilege database roles, production settings."""

from __future__ import annotations

import json
import time

import httpx

from tests.e2e.conftest import Figures
from tests.e2e.kube import NAMESPACE, RELEASE, Cluster, wait_for


def test_namespace_enforces_pod_security_restricted(cluster: Cluster) -> None:
    labels = cluster.core.read_namespace(NAMESPACE).to_dict()["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # The API server re-checks every existing pod against the level: a pod
    # admitted before the label (or by an exemption) would show up here.
    check = cluster.kubectl(
        "label", "--dry-run=server", "--overwrite", "namespace", NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted", namespace=None,
    )  # fmt: skip
    assert "violate" not in check.stderr + check.stdout, check.stderr


def test_every_workload_is_ready(cluster: Cluster, fullname: str) -> None:
    # The Deployment starts at one pod; the HPA raises it to minReplicas on its
    # first sync (15 s), metrics or not. helm --wait saw only the first pod.
    minimum = cluster.hpa()["spec"]["min_replicas"]
    assert minimum == 2
    cluster.wait_api_settled(replicas=minimum, timeout=180)
    for name in (f"{fullname}-postgresql", f"{fullname}-redis"):
        assert cluster.apps.read_namespaced_stateful_set(name, NAMESPACE).to_dict()["status"]["ready_replicas"] == 1
    assert [job["status"]["succeeded"] for job in cluster.migration_jobs().values()] == [1]
    claims = cluster.core.list_namespaced_persistent_volume_claim(NAMESPACE).to_dict()["items"]
    assert [claim["status"]["phase"] for claim in claims] == ["Bound"]


def test_helm_test_passes(cluster: Cluster) -> None:
    result = cluster.helm("test", RELEASE, "--timeout", "3m", "--logs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Phase:          Succeeded" in result.stdout
    assert "/readyz 200 {'status': 'ready'" in result.stdout  # what the test pod printed


def test_the_api_serves_through_its_service(api: str) -> None:
    with httpx.Client(base_url=api, timeout=15) as http:
        ready = http.get("/readyz").json()
        assert ready == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}
        http.post("/users/", json={"email": "e2e@example.com", "username": "e2e", "password": "end to end password"})
        tokens = http.post("/auth/token", data={"username": "e2e", "password": "end to end password"}).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        product = http.post("/products/", json={"name": "Kind mug", "price": "12.50", "stock": 5}, headers=auth).json()
        assert http.get(f"/products/{product['id']}").headers["x-cache"] == "MISS"
        assert http.get(f"/products/{product['id']}").headers["x-cache"] == "HIT"
        order = http.post("/orders/", json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=auth)
        assert order.status_code == 201
        assert order.json()["total"] == "25.00"
        assert http.get(f"/products/{product['id']}").json()["stock"] == 3
        assert http.get("/stats").json()["orders"] >= 1


def test_production_settings_hide_docs_and_metrics_on_the_http_port(api: str) -> None:
    """`/docs` is off in production, and /metrics lives on the metrics port
    only (test_02 reaches it there, from the monitoring namespace)."""
    with httpx.Client(base_url=api, timeout=15) as http:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            assert http.get(path).status_code == 404, path


def test_api_pods_run_hardened(cluster: Cluster) -> None:
    pod = cluster.api_pods()[0]["metadata"]["name"]
    probe = (
        "import os, pathlib\n"
        "print('uid', os.getuid())\n"
        "try:\n    pathlib.Path('/app/x').write_text('x'); print('app-writable')\n"
        "except OSError: print('app-read-only')\n"
        "pathlib.Path('/tmp/x').write_text('x'); print('tmp-writable')\n"
        "print('token', os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token'))\n"
    )
    out = cluster.exec(pod, "api", "python3", "-c", probe).split("\n")
    environment = json.loads(
        cluster.exec(pod, "api", "python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))")
    )
    secrets = set(cluster.secret_values().values())
    # Names only in the message: the values are the secrets.
    in_environment = sorted(name for name, value in environment.items() if any(s in value for s in secrets if s))
    assert out[0].startswith("uid ")
    assert out[0] != "uid 0"
    assert "app-read-only" in out
    assert "tmp-writable" in out
    assert "token False" in out
    assert in_environment == [], f"secrets in environment variables: {in_environment}"  # files only (SECRETS_DIR)


def test_database_roles_are_least_privilege(cluster: Cluster, figures: Figures) -> None:
    """The app connects as a DML-only role, the migrations ran as the owner,
    and neither is a superuser: read from pg_roles and the privileges."""
    roles = {
        name: (superuser, createrole, createdb)
        for name, superuser, createrole, createdb in cluster.psql(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname LIKE 'storefront%'"
        )
    }
    assert roles == {"storefront": ("f", "f", "f"), "storefront_owner": ("f", "f", "f")}
    superusers = [row[0] for row in cluster.psql("SELECT rolname FROM pg_roles WHERE rolsuper")]
    assert superusers == ["postgres"]  # the local socket's, for operators (and this test)

    # The migrations created every table as the owner.
    owners = {row[0] for row in cluster.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert owners == {"storefront_owner"}
    assert cluster.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'storefront'") == (
        "storefront_owner"
    )

    # The app role: DML on every table, nothing more.
    privileges = cluster.psql(
        "SELECT tablename, "
        "has_table_privilege('storefront', 'public.' || tablename, 'SELECT,INSERT,UPDATE,DELETE'), "
        "has_table_privilege('storefront', 'public.' || tablename, 'TRUNCATE'), "
        "has_table_privilege('storefront', 'public.' || tablename, 'REFERENCES'), "
        "has_table_privilege('storefront', 'public.' || tablename, 'TRIGGER') "
        "FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    assert privileges, "no tables"
    assert all(row[1:] == ["t", "f", "f", "f"] for row in privileges), privileges
    assert cluster.scalar("SELECT has_schema_privilege('storefront', 'public', 'CREATE')") == "f"
    assert cluster.scalar("SELECT has_database_privilege('storefront', 'storefront', 'CREATE')") == "f"
    denied = cluster.kubectl(
        "exec", f"{cluster.fullname}-postgresql-0", "-c", "postgresql", "--",
        "psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "storefront",
        "-c", "SET ROLE storefront; CREATE TABLE e2e_intruder (id int)", check=False,
    )  # fmt: skip
    assert denied.returncode != 0
    assert "permission denied" in denied.stderr, denied.stderr

    # The running API's connections use the app role.
    def app_connections() -> list[list[str]]:
        rows = cluster.psql(
            "SELECT usename, count(*) FROM pg_stat_activity "
            "WHERE datname = 'storefront' AND application_name LIKE 'storefront-api%' GROUP BY usename"
        )
        return rows or []

    users = wait_for("the API's connections", app_connections, timeout=60)
    assert [row[0] for row in users] == ["storefront"]
    figures.record(app_connections_idle=int(users[0][1]), tables=len(privileges))


def test_metrics_server_feeds_the_autoscaler(cluster: Cluster) -> None:
    deadline = time.monotonic() + 240
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = cluster.hpa()["status"]
        metrics = status.get("current_metrics") or []
        assert isinstance(metrics, list)
        if any((m.get("resource") or {}).get("current", {}).get("average_utilization") is not None for m in metrics):
            return
        time.sleep(10)
    raise AssertionError(f"the HPA never got CPU metrics: {status}")
