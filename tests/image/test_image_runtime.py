"""The image at work, hardened (read-only root, no capabilities) against real
PostgreSQL and Redis: migrations, readiness, a user's round trip."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import port_for
from sqlalchemy.engine import URL

from tests.image.conftest import container_database_url, create_database, migrate_with_image, query
from tests.image.containers import Container, container, run_to_completion, server_command
from tests.support.api import PASSWORD, new_user_payload
from tests.support.servers import postgres_server

Server = tuple[Container, str]


def image_head(image: str) -> str:
    code, output = run_to_completion(image, "alembic", "heads")
    assert code == 0, output
    match = re.search(r"^(\w+) \(head\)", output, re.M)
    assert match, output
    return match.group(1)


def test_migrations_run_in_the_image_on_a_read_only_root(image: str, migrated_database: URL) -> None:
    # `migrated_database` ran `alembic upgrade head` in the hardened image.
    assert query(migrated_database, "SELECT version_num FROM alembic_version") == [(image_head(image),)]
    tables = {row[0] for row in query(migrated_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "users" in tables
    # A second run (a retried Job) finds nothing to do.
    code, output = migrate_with_image(image, migrated_database)
    assert code == 0, output
    code, output = run_to_completion(
        image, "alembic", "current", env={"DATABASE_URL": container_database_url(migrated_database)}
    )
    assert code == 0, output
    assert f"{image_head(image)} (head)" in output


def test_migrations_wait_for_the_database_with_db_wait_seconds(image: str) -> None:
    with postgres_server() as server:
        janitor, url = create_database(server)
        server.executor.stop()
        env = {"DATABASE_URL": container_database_url(url), "DB_WAIT_SECONDS": "90"}
        with container(image, "alembic", "upgrade", "head", env=env) as handle:
            deadline = time.monotonic() + 30
            while "database not reachable yet" not in handle.logs():
                assert handle.state()["Running"], handle.logs()
                assert time.monotonic() < deadline, handle.logs()
                time.sleep(0.2)
            server.executor.start()  # the same data directory and port
            assert handle.wait(timeout=90) == 0, handle.logs()
        assert query(url, "SELECT count(*) FROM alembic_version") == [(1,)]
        janitor.drop()


def test_without_a_database_migrations_fail_after_the_wait(image: str) -> None:
    with postgres_server() as server:
        url = server.url("storefront")
        server.executor.stop()
        started = time.monotonic()
        code, output = migrate_with_image(image, url, DB_WAIT_SECONDS="3")
        elapsed = time.monotonic() - started
    assert code != 0
    assert "database not reachable yet" in output
    assert elapsed >= 3


def test_readyz_reports_database_and_cache_ok(server: Server) -> None:
    _, base_url = server
    response = httpx.get(f"{base_url}/readyz", timeout=5)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}


def test_a_user_registers_logs_in_and_is_fetched_through_the_container(server: Server) -> None:
    _, base_url = server
    with httpx.Client(base_url=base_url, timeout=10) as client:
        payload = new_user_payload("image")
        created = client.post("/users/", json=payload)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert created.headers["location"] == f"/users/{user_id}"

        # Anyone else gets the public profile: no e-mail address (contract v1.1).
        fetched = client.get(f"/users/{user_id}")
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["username"] == payload["username"]
        assert "email" not in fetched.json()

        tokens = client.post("/auth/token", data={"username": payload["username"], "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        signed_in = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        me = client.get("/users/me", headers=signed_in)
        assert me.status_code == 200, me.text
        assert me.json()["id"] == user_id
        assert client.get(f"/users/{user_id}", headers=signed_in).json()["email"] == payload["email"]


WRITE_PROBE = """
import errno, json, sys
result = {}
for path in sys.argv[1:]:
    try:
        with open(path, "w") as f:
            f.write("x")
        result[path] = "written"
    except OSError as exc:
        result[path] = errno.errorcode[exc.errno]
print(json.dumps(result))
"""


def test_runs_as_non_root_and_writes_only_to_tmp(server: Server) -> None:
    handle, _ = server
    uid = handle.exec("id", "-u")
    assert (uid.returncode, uid.stdout.strip()) == (0, "10001")
    read_only = ["/app/x", "/app/app/x", "/opt/venv/x", "/x", "/etc/x", "/var/tmp/x"]  # noqa: S108
    scratch = "/tmp/x"  # noqa: S108  (the container's tmpfs)
    probe = handle.exec("python3", "-c", WRITE_PROBE, *read_only, scratch)
    assert probe.returncode == 0, probe.stderr
    # EROFS, not merely EACCES: the root filesystem itself is read-only.
    assert json.loads(probe.stdout) == {**dict.fromkeys(read_only, "EROFS"), scratch: "written"}


def test_one_process_uvicorn_as_pid_1(server: Server) -> None:
    handle, _ = server
    listing = handle.exec(
        "python3",
        "-c",
        "import json, os; print(json.dumps({p: open(f'/proc/{p}/cmdline').read().split(chr(0))"
        " for p in os.listdir('/proc') if p.isdigit()}))",
    )
    assert listing.returncode == 0, listing.stderr
    processes = json.loads(listing.stdout)
    # PID 1 and this probe (docker exec's process), nothing else: no shell, no workers.
    assert len(processes) == 2, processes
    assert processes["1"][1:3] == ["/opt/venv/bin/uvicorn", "app.main:app"], processes["1"]


def test_healthcheck_turns_healthy_and_fails_without_a_server(server: Server, image_config: dict[str, Any]) -> None:
    handle, _ = server
    deadline = time.monotonic() + 30
    while handle.state()["Health"]["Status"] != "healthy":
        assert handle.state()["Health"]["Status"] in ("starting", "healthy"), handle.state()["Health"]
        assert time.monotonic() < deadline, handle.state()["Health"]
        time.sleep(0.5)
    # The same command against a port nothing listens on fails, and quickly.
    command = image_config["Healthcheck"]["Test"][1:]
    started = time.monotonic()
    failed = handle.exec(*command, env={"HEALTHCHECK_URL": "http://127.0.0.1:9/livez"})
    assert failed.returncode != 0
    assert time.monotonic() - started < 5


def test_unconfigured_the_image_refuses_the_development_signing_key(image: str, image_config: dict[str, Any]) -> None:
    """ENVIRONMENT=production is the image's default: without SECRET_KEY the
    server does not start on the public development key."""
    port = str(port_for.select_random())
    code, output = run_to_completion(image, *server_command(image_config, int(port)), timeout=60)
    assert code != 0
    assert "SECRET_KEY must be set" in output
