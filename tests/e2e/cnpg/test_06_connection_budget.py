"""Scenario 5, connection accounting: at the HPA's maximum, every API pod
uses its whole pool (pool size + overflow) at once through PgBouncer, and
PostgreSQL never sees more server connections of the app role than the
budget the chart checked: PgBouncer pods x defaultPoolSize."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

from tests.e2e.cnpg.conftest import FULLNAME, NAMESPACE, POOLER, Release
from tests.e2e.kube import KUBE_CONTEXT, KUBECTL

# Run in each API pod with the pod's own configuration: its full pool, every
# connection in back-to-back transactions that each hold it for a while.
FULL_POOL = r"""
import asyncio, json, time
from sqlalchemy import text
from app.platform.config import Settings
from app.platform.database import create_engine

settings = Settings()
engine = create_engine(settings)
connections = settings.db_pool_size + settings.db_max_overflow
errors, done = {}, [0]


async def client(deadline):
    while time.monotonic() < deadline:
        try:
            async with engine.begin() as connection:
                await connection.execute(text("SELECT pg_sleep(0.5)"))
            done[0] += 1
        except Exception as exc:
            key = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:120])
            errors[key] = errors.get(key, 0) + 1


async def main():
    deadline = time.monotonic() + SECONDS
    await asyncio.gather(*(client(deadline) for _ in range(connections)))
    await engine.dispose()
    print(json.dumps({"connections": connections, "transactions": done[0], "errors": errors}))


asyncio.run(main())
"""
SECONDS = 25


def test_at_max_replicas_server_connections_stay_within_the_budget(cnpg: Release) -> None:
    hpa = cnpg.json("hpa", FULLNAME)["spec"]
    pooler = cnpg.json("pooler", POOLER)["spec"]
    config = cnpg.json("configmap", FULLNAME)["data"]
    per_pod = int(config["DB_POOL_SIZE"]) + int(config["DB_MAX_OVERFLOW"])
    budget = pooler["instances"] * int(pooler["pgbouncer"]["parameters"]["default_pool_size"])
    max_connections = int(cnpg.psql("SHOW max_connections"))
    patch = json.dumps({"spec": {"minReplicas": hpa["maxReplicas"]}})
    cnpg.kubectl("patch", "hpa", FULLNAME, "--type=merge", "-p", patch)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = cnpg.json("deployment", FULLNAME)["status"]
            if status.get("readyReplicas") == hpa["maxReplicas"] == status.get("replicas"):
                break
            time.sleep(3)
        pods = [p["metadata"]["name"] for p in cnpg.api_pods()]
        assert len(pods) == hpa["maxReplicas"], f"{len(pods)} API pods, HPA maximum {hpa['maxReplicas']}"

        loads = [
            subprocess.Popen(
                [
                    KUBECTL,
                    "--context",
                    KUBE_CONTEXT,
                    "--namespace",
                    NAMESPACE,
                    "exec",
                    pod,
                    "-c",
                    "api",
                    "--",
                    "python3",
                    "-c",
                    f"SECONDS = {SECONDS}\n{FULL_POOL}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for pod in pods
        ]
        peaks = {"app_server_connections": 0, "all_client_backends": 0, "pgbouncer_clients": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                counts = cnpg.psql(
                    "SELECT count(*) FILTER (WHERE usename = 'storefront'), count(*) "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend'"
                ).split("|")
                peaks["app_server_connections"] = max(peaks["app_server_connections"], int(counts[0]))
                peaks["all_client_backends"] = max(peaks["all_client_backends"], int(counts[1]))
                clients = 0
                for pod in cnpg.pooler_pods():
                    rows = cnpg.pgbouncer(pod, "SHOW POOLS")
                    header = rows[0]
                    for row in rows[1:]:
                        pool = dict(zip(header, row, strict=False))
                        if pool.get("database") == "storefront":
                            clients += int(pool["cl_active"]) + int(pool["cl_waiting"])
                peaks["pgbouncer_clients"] = max(peaks["pgbouncer_clients"], clients)
                time.sleep(0.5)

        watcher = threading.Thread(target=watch)
        watcher.start()
        outputs: list[dict[str, Any]] = []
        for load in loads:
            out, err = load.communicate(timeout=SECONDS + 120)
            assert load.returncode == 0, err[-2000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        stop.set()
        watcher.join()
    finally:
        cnpg.kubectl(
            "patch", "hpa", FULLNAME, "--type=merge", "-p", json.dumps({"spec": {"minReplicas": hpa["minReplicas"]}})
        )

    cnpg.record(
        "connection_budget",
        {
            "api_pods": len(pods),
            "client_connections_opened": sum(o["connections"] for o in outputs),
            "transactions": sum(o["transactions"] for o in outputs),
            "errors": [o["errors"] for o in outputs if o["errors"]],
            "budget_app_server_connections": budget,
            "max_connections": max_connections,
            **{f"peak_{name}": value for name, value in peaks.items()},
        },
    )
    # The load was real: more clients than PgBouncer has server connections.
    assert sum(o["connections"] for o in outputs) == len(pods) * per_pod
    assert peaks["pgbouncer_clients"] > budget
    assert peaks["app_server_connections"] <= budget
    assert peaks["all_client_backends"] <= max_connections
    assert all(o["errors"] == {} for o in outputs), [o["errors"] for o in outputs]
