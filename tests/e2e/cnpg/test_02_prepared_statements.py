"""asyncpg through PgBouncer in transaction mode, under concurrent load.

The decision (README, "Production database"): keep asyncpg's prepared
statements and its statement cache, and let PgBouncer (>= 1.21) track them
(`max_prepared_statements`): it prepares a client's statement again on
whichever server connection the client's next transaction gets. The control:
the same workload through a second Pooler with the feature off fails, so the
setting, not luck, is what makes the chart's Pooler safe.

The workload is the app's own engine (create_engine with the settings the
chart renders: DB_TRANSACTION_POOLER) in a pod of the app image: more client
connections than PgBouncer has server connections, each running transactions
of several distinct parameterised statements.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cnpg.conftest import CLUSTER, NAMESPACE, POOLER, Release
from tests.e2e.kube import wait_for

CONTROL = f"{CLUSTER}-pooler-control"
PROBE_LABEL = "storefront-e2e/prepared-statements"

WORKLOAD = r"""
import asyncio, json
from sqlalchemy import text
from app.platform.config import Settings
from app.platform.database import create_engine

config = json.loads(CONFIG)


async def workload(host):
    settings = Settings(
        environment="development",
        database_url="postgresql://%s@%s:5432/storefront" % (config["user"], host),
        database_password=config["password"],
        db_transaction_pooler=True,
        db_pool_size=config["clients"], db_max_overflow=0, db_pool_timeout=30,
    )
    engine = create_engine(settings)
    errors, done = {}, [0]

    async def client(n):
        for i in range(config["iterations"]):
            try:
                async with engine.begin() as connection:
                    await connection.execute(text("SELECT CAST(:a AS integer) + 1"), {"a": i})
                    await connection.execute(text("SELECT count(*) FROM products WHERE id > :b"), {"b": n})
                    await connection.execute(text("SELECT CAST(:c AS text) || 'x'"), {"c": str(n)})
                done[0] += 1
            except Exception as exc:
                key = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:140])
                errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(client(n) for n in range(config["clients"])))
    await engine.dispose()
    return {"transactions": done[0], "errors": errors}


async def main():
    return {host: await workload(host) for host in config["hosts"]}


print(json.dumps(asyncio.run(main())))
"""


@pytest.fixture
def control_pooler(cnpg: Release) -> Iterator[str]:
    """A second Pooler, max_prepared_statements off, and a NetworkPolicy that
    lets the workload pod reach both (the chart's admits only the API)."""
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Pooler",
                "metadata": {"name": CONTROL, "namespace": NAMESPACE},
                "spec": {
                    "cluster": {"name": CLUSTER},
                    "instances": 1,
                    "type": "rw",
                    "pgbouncer": {
                        "poolMode": "transaction",
                        "parameters": {"default_pool_size": "4", "max_prepared_statements": "0"},
                    },
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "pgbouncer",
                                    "image": cnpg.json("pooler", POOLER)["status"].get("image")
                                    or cnpg.json("deployment", POOLER)["spec"]["template"]["spec"]["containers"][0][
                                        "image"
                                    ],
                                    "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
                                }
                            ]
                        }
                    },
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "e2e-prepared-statements", "namespace": NAMESPACE},
                "spec": {
                    "podSelector": {"matchExpressions": [{"key": "cnpg.io/poolerName", "operator": "Exists"}]},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {PROBE_LABEL: "true"}}}]}],
                },
            },
        ],
    }
    cnpg.kubectl("apply", "-f", "-", check=True, input_text=json.dumps(manifest))
    # The operator creates the Deployment some time after the Pooler: `kubectl
    # wait` on an object that does not exist yet fails at once.
    wait_for(
        f"the operator to create deployment/{CONTROL}",
        lambda: cnpg.kubectl("get", "deployment", CONTROL, check=False).returncode == 0,
        timeout=60,
    )
    cnpg.kubectl("wait", "--for=condition=Available", f"deployment/{CONTROL}", "--timeout=120s", timeout=150)
    try:
        yield CONTROL
    finally:
        cnpg.kubectl("delete", "pooler", CONTROL, "--ignore-not-found", "--wait=false", check=False)
        cnpg.kubectl("delete", "networkpolicy", "e2e-prepared-statements", "--ignore-not-found", check=False)


def test_prepared_statements_work_through_pgbouncer_only_with_tracking(cnpg: Release, control_pooler: str) -> None:
    secret = cnpg.json("secret", f"{CLUSTER}-app")["data"]
    config: dict[str, Any] = {
        "user": base64.b64decode(secret["username"]).decode(),
        "password": base64.b64decode(secret["password"]).decode(),
        # 24 clients over 10 server connections per PgBouncer pod (4 for the control).
        "clients": 24,
        "iterations": 25,
        "hosts": [POOLER, control_pooler],
    }
    script = f"CONFIG = {json.dumps(json.dumps(config))}\n{WORKLOAD}"
    outcome = cnpg.python_pod("e2e-prepared", script, timeout=240, labels={PROBE_LABEL: "true"})
    tracked, control = outcome[POOLER], outcome[control_pooler]
    expected = config["clients"] * config["iterations"]
    cnpg.record(
        "prepared_statements",
        {
            "clients": config["clients"],
            "transactions_expected": expected,
            "with_max_prepared_statements": tracked,
            "control_max_prepared_statements_0": control,
        },
    )
    assert tracked == {"transactions": expected, "errors": {}}
    assert control["errors"], "the control Pooler (no tracking) never failed: the workload proves nothing"
    assert any("prepared statement" in error for error in control["errors"]), control["errors"]
    # PgBouncer did the work: its servers hold statements prepared for clients.
    prepared = [row for pod in cnpg.pooler_pods() for row in cnpg.pgbouncer(pod, "SHOW SERVERS")]
    header = prepared[0]
    assert "prepared_statements" in header, header


def test_session_state_does_not_outlive_a_transaction_through_the_pooler(cnpg: Release) -> None:
    """Why the migration Job bypasses PgBouncer: a session-level advisory lock
    taken through it stays on a server connection the next client gets."""
    api = cnpg.api_pods()[0]["metadata"]["name"]
    pooler_ip = cnpg.pods(f"cnpg.io/poolerName={POOLER}")[0]["status"]["podIP"]
    script = (
        "import asyncio, asyncpg, json, os, pathlib\n"
        "async def main():\n"
        "    password = pathlib.Path(os.environ['SECRETS_DIR'], 'DATABASE_PASSWORD').read_text()\n"
        f"    dsn = 'postgresql://storefront@{pooler_ip}:5432/storefront'\n"
        "    holder = await asyncpg.connect(dsn, password=password)\n"
        "    other = await asyncpg.connect(dsn, password=password)\n"
        "    await holder.execute('SELECT pg_advisory_lock(731246)')\n"
        "    taken = [await other.fetchval('SELECT pg_try_advisory_lock(731246)') for _ in range(20)]\n"
        "    await other.execute('SELECT pg_advisory_unlock_all()')\n"
        "    await holder.execute('SELECT pg_advisory_unlock_all()')\n"
        "    print(json.dumps({'other_client_got_the_lock': any(taken)}))\n"
        "asyncio.run(main())\n"
    )
    out = cnpg.kubectl("exec", api, "-c", "api", "--", "python3", "-c", script).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"other_client_got_the_lock": True}
