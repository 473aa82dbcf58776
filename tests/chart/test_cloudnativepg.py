"""database.mode=cloudnativepg: the Cluster and Pooler the chart renders, the
connection budget through PgBouncer, and the roles SQL run for real on a
PostgreSQL bootstrapped the way the operator's initdb leaves it."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.chart.conftest import Manifest, RenderError, containers, env_of, one, pod_specs, render, secret_files
from tests.support.servers import PG_USER, PostgresServer, migrate, postgres_server

Render = Callable[..., list[Manifest]]
SCENARIO = "ci/cloudnativepg-values.yaml"
CLUSTER = "shop-storefront-db"
POOLER = f"{CLUSTER}-pooler-rw"
SECRETS = "/var/run/secrets/storefront"


def test_the_cluster_is_three_instances_with_a_synchronous_standby(rendered: Render) -> None:
    cluster = one(rendered(SCENARIO), "Cluster")["spec"]
    assert cluster["instances"] == 3
    assert cluster["imageName"].split(":")[1].startswith("17")
    assert cluster["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
    assert cluster["affinity"]["enablePodAntiAffinity"] is True
    assert cluster["affinity"]["topologyKey"] == "kubernetes.io/hostname"
    assert cluster["enableSuperuserAccess"] is False
    assert cluster["primaryUpdateMethod"] == "switchover"
    assert cluster["postgresql"]["parameters"]["max_connections"] == "100"


def test_the_app_role_is_the_operators_and_the_owner_is_managed(rendered: Render) -> None:
    manifests = rendered(SCENARIO)
    cluster = one(manifests, "Cluster")["spec"]
    # initdb's owner is the app role: the operator generates <cluster>-app for it.
    assert cluster["bootstrap"]["initdb"] == {
        "database": "storefront",
        "owner": "storefront",
        "postInitApplicationSQLRefs": {"secretRefs": [{"name": f"{CLUSTER}-roles", "key": "roles.sql"}]},
    }
    [owner] = cluster["managed"]["roles"]
    assert owner["name"] == "storefront_owner"
    assert owner["login"] is True
    assert not any(owner[flag] for flag in ("superuser", "createdb", "createrole", "replication", "bypassrls"))
    assert owner["passwordSecret"] == {"name": f"{CLUSTER}-owner"}
    secret = one(manifests, "Secret", f"{CLUSTER}-owner")
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true"
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # No password in the values, and no Secret for the app role: the operator's.
    names = {m["metadata"]["name"] for m in manifests if m["kind"] == "Secret"}
    assert f"{CLUSTER}-app" not in names
    assert "shop-storefront-postgresql" not in names
    assert not [m for m in manifests if m["kind"] == "StatefulSet" and m["metadata"]["name"].endswith("-postgresql")]


def test_the_api_goes_through_pgbouncer_and_the_migrations_to_the_primary(rendered: Render) -> None:
    manifests = rendered(SCENARIO)
    config = one(manifests, "ConfigMap", "storefront")["data"]
    assert config["DATABASE_URL"] == f"postgresql://storefront@{POOLER}:5432/storefront"
    assert config["DB_TRANSACTION_POOLER"] == "true"
    for name, spec in pod_specs(manifests):
        for container in containers(spec):
            files = secret_files(spec, container)
            if f"{SECRETS}/DATABASE_PASSWORD" not in files:
                continue
            if name.startswith("Job/"):
                assert files[f"{SECRETS}/DATABASE_PASSWORD"] == (f"{CLUSTER}-owner", "password")
                assert env_of(container)["DATABASE_URL"]["value"] == (
                    f"postgresql://storefront_owner@{CLUSTER}-rw:5432/storefront"
                )
            else:
                assert files[f"{SECRETS}/DATABASE_PASSWORD"] == (f"{CLUSTER}-app", "password"), name


def test_the_pooler_runs_transaction_mode_with_prepared_statements_and_a_capped_pool(rendered: Render) -> None:
    pooler = one(rendered(SCENARIO), "Pooler")["spec"]
    assert pooler["cluster"] == {"name": CLUSTER}
    assert pooler["type"] == "rw"
    assert pooler["instances"] == 2
    pgbouncer = pooler["pgbouncer"]
    assert pgbouncer["poolMode"] == "transaction"
    parameters = pgbouncer["parameters"]
    assert int(parameters["max_prepared_statements"]) > 0
    assert parameters["default_pool_size"] == parameters["max_db_connections"] == "10"
    assert int(parameters["server_login_retry"]) <= 2


def test_without_transaction_pooling_the_app_keeps_session_settings(rendered: Render) -> None:
    config = one(rendered(SCENARIO, set_values={"cloudnativepg.pooler.poolMode": "session"}), "ConfigMap", "storefront")
    assert "DB_TRANSACTION_POOLER" not in config["data"]


def test_network_policies_let_only_the_api_reach_pgbouncer(rendered: Render) -> None:
    policies = {m["metadata"]["name"]: m["spec"] for m in rendered(SCENARIO) if m["kind"] == "NetworkPolicy"}
    api_egress = [rule for rule in policies["shop-storefront-api"]["egress"] if "to" in rule]
    assert {"podSelector": {"matchLabels": {"cnpg.io/poolerName": POOLER}}} in api_egress[0]["to"]
    migrations = policies["shop-storefront-migrations"]["egress"]
    assert {"podSelector": {"matchLabels": {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}}} in [
        peer for rule in migrations for peer in rule.get("to", [])
    ]
    pooler_from = policies[POOLER]["ingress"][0]["from"]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in pooler_from] == ["api"]
    instance = policies[CLUSTER]
    assert instance["podSelector"]["matchLabels"] == {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}
    assert "shop-storefront-postgresql" not in policies


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, None),  # 7 API pods x (10 + 1) = 77 clients <= 200; 2 x (10 + 1) = 22 servers <= 90
        ({"autoscaling.maxReplicas": "17"}, None),  # 18 x 11 = 198 clients
        ({"autoscaling.maxReplicas": "18"}, "PgBouncer client budget exceeded"),  # 19 x 11 = 209
        ({"cloudnativepg.pooler.maxClientConnections": "76"}, "PgBouncer client budget exceeded"),
        ({"cloudnativepg.pooler.defaultPoolSize": "44"}, None),  # 2 x 45 = 90: exactly the budget
        ({"cloudnativepg.pooler.defaultPoolSize": "45"}, "PostgreSQL connection budget exceeded"),
        ({"cloudnativepg.pooler.instances": "9"}, "PostgreSQL connection budget exceeded"),  # 99 > 90
        ({"cloudnativepg.maxConnections": "200", "cloudnativepg.pooler.instances": "9"}, None),
    ],
)
def test_connection_budget_through_pgbouncer(rendered: Render, overrides: dict[str, str], message: str | None) -> None:
    if message is None:
        rendered(SCENARIO, set_values=overrides)
        return
    with pytest.raises(RenderError, match=message):
        rendered(SCENARIO, set_values=overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cloudnativepg.imageName": ""}, "needs cloudnativepg.imageName"),
        ({"cloudnativepg.pooler.maxPreparedStatements": "0"}, "maxPreparedStatements must be above 0"),
        ({"cloudnativepg.synchronous.number": "3"}, "must be below cloudnativepg.instances"),
        ({"cloudnativepg.auth.ownerUsername": "storefront"}, "must differ"),
        ({"database.mode": "operator"}, "database/mode"),
        ({"cloudnativepg.pooler.poolMode": "statement"}, "poolMode"),
    ],
)
def test_unsafe_values_are_refused(rendered: Render, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        rendered(SCENARIO, set_values=overrides)


def test_an_empty_mode_keeps_the_meaning_of_postgresql_enabled(rendered: Render) -> None:
    bundled = rendered()
    assert one(bundled, "StatefulSet", "-postgresql")
    assert not [m for m in bundled if m["kind"] in ("Cluster", "Pooler")]
    external = rendered("ci/external-database-values.yaml")
    assert not [m for m in external if m["kind"] in ("Cluster", "Pooler", "StatefulSet")]


# --- the roles SQL, run for real -------------------------------------------------


def roles_sql(manifests: list[Manifest]) -> tuple[str, str]:
    """The SQL the operator runs after initdb, and the owner password in it."""
    secret = one(manifests, "Secret", f"{CLUSTER}-roles")
    owner = one(manifests, "Secret", f"{CLUSTER}-owner")
    return secret["stringData"]["roles.sql"], base64.b64decode(owner["data"]["password"]).decode()


@pytest.fixture
def bootstrapped(helm_available: None, tmp_path: Path) -> Iterator[tuple[PostgresServer, str]]:
    """A server left as CloudNativePG's initdb leaves it (the app role owns the
    database), then the chart's roles SQL run in it as superuser."""
    sql, owner_password = roles_sql(render(SCENARIO))
    with postgres_server() as server:
        data = Path(server.executor.datadir)
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                admin = superuser(server, "postgres")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with admin:
            admin.execute("SELECT pg_reload_conf()")
            admin.execute("CREATE ROLE storefront LOGIN PASSWORD 'app-secret'")
            admin.execute("CREATE DATABASE storefront OWNER storefront")
        with superuser(server, "storefront") as admin:
            admin.execute(sql.encode())
        yield server, owner_password


def superuser(server: PostgresServer, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=server.executor.unixsocketdir, port=server.port, user=PG_USER, dbname=dbname, autocommit=True
    )


def connect(server: PostgresServer, user: str, password: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1", port=server.port, user=user, password=password, dbname="storefront", autocommit=True
    )


def test_ownership_moves_to_the_owner_role_and_the_app_role_keeps_dml_only(
    bootstrapped: tuple[PostgresServer, str],
) -> None:
    server, owner_password = bootstrapped
    with superuser(server, "postgres") as admin:
        owner = admin.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'storefront'")
        assert owner.fetchone() == ("storefront_owner",)
        flags = admin.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin "
            "FROM pg_roles WHERE rolname = 'storefront_owner'"
        ).fetchone()
        assert flags == (False, False, False, False, False, True)
    migrate(
        URL.create(
            "postgresql+asyncpg",
            username="storefront_owner",
            password=owner_password,
            host="127.0.0.1",
            port=server.port,
            database="storefront",
        )
    )
    with connect(server, "storefront", "app-secret") as app:
        tables = [row[0] for row in app.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "orders" in tables
        for table in tables:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert app.execute("SELECT has_table_privilege(%s, %s)", (table, privilege)).fetchone() == (True,)
            assert app.execute("SELECT has_table_privilege(%s, 'TRUNCATE')", (table,)).fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DROP TABLE orders")
