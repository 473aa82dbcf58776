"""The bundled PostgreSQL's postStart hook, run for real: the scripts the
chart renders into its ConfigMap, against a throwaway PostgreSQL server that
authenticates TCP clients by password (like the image's `host all all all
scram-sha-256`) and trusts its local socket (like the image)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.chart.conftest import Manifest, one, render
from tests.support.servers import PG_USER, PostgresServer, migrate, postgres_server

DATABASE = "storefront"
OWNER = "storefront_owner"
APP = "storefront"
FIRST_OWNER_PASSWORD = "owner-secret-1"


@dataclass
class Hook:
    server: PostgresServer
    scripts: Path
    credentials: Path

    def run(
        self,
        app_password: str,
        owner_password: str = FIRST_OWNER_PASSWORD,
        wait_seconds: int = 20,
    ) -> subprocess.CompletedProcess[str]:
        """One container start: the Secret's files as mounted, then the hook."""
        (self.credentials / "password").write_text(app_password)
        (self.credentials / "owner-password").write_text(owner_password)
        env = {
            **os.environ,
            "STOREFRONT_DATABASE": DATABASE,
            "STOREFRONT_OWNER_ROLE": OWNER,
            "STOREFRONT_APP_ROLE": APP,
            "STOREFRONT_CREDENTIALS_DIR": str(self.credentials),
            "STOREFRONT_SOCKET_DIR": self.server.executor.unixsocketdir,
            "STOREFRONT_LOG": "/dev/stderr",
            "STOREFRONT_ROLES_WAIT_SECONDS": str(wait_seconds),
            "PGPORT": str(self.server.port),
            "POSTGRES_USER": PG_USER,
        }
        return subprocess.run(
            ["sh", str(self.scripts / "ensure-roles.sh")], env=env, capture_output=True, text=True, timeout=60
        )

    def connect(self, user: str, password: str, dbname: str = DATABASE) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.server.port, user=user, password=password, dbname=dbname, autocommit=True
        )

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.server.executor.unixsocketdir, port=self.server.port, user=PG_USER, dbname=dbname, autocommit=True
        )


def rendered_scripts(manifests: list[Manifest], target: Path) -> Path:
    target.mkdir()
    for name, text in one(manifests, "ConfigMap", "-postgresql-scripts")["data"].items():
        (target / name).write_text(text)
    return target


@pytest.fixture
def hook(helm_available: None, tmp_path: Path) -> Iterator[Hook]:
    scripts = rendered_scripts(render(), tmp_path / "scripts")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    with postgres_server() as server:
        hook = Hook(server, scripts, credentials)
        # Password authentication over TCP, trust on the socket: the image's pg_hba.
        data = Path(server.executor.datadir)
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
        )
        # pg_ctl -w returned, yet under load the server may still refuse
        # connections "while starting up" for a moment.
        deadline = time.monotonic() + 30
        while True:
            try:
                hook.superuser().close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with hook.superuser() as admin:
            admin.execute("SELECT pg_reload_conf()")
            # As the image's initdb leaves it: the superuser has a password.
            admin.execute("ALTER ROLE postgres PASSWORD 'initdb-password'")
        yield hook


def test_roles_are_created_least_privileged_and_the_superuser_has_no_password(hook: Hook) -> None:
    result = hook.run("app-secret-1")
    assert result.returncode == 0, result.stderr
    assert "roles storefront_owner (owner) and storefront (app) applied" in result.stderr
    with hook.superuser() as admin:
        roles = admin.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin "
            "FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            ([OWNER, APP],),
        ).fetchall()
        assert roles == [
            (APP, False, False, False, False, False, True),
            (OWNER, False, False, False, False, False, True),
        ]
        owner = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        assert owner == (OWNER,)
        assert admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (PG_USER,)).fetchone() == (None,)


def test_migrations_run_as_owner_and_the_app_gets_dml_only(hook: Hook) -> None:
    assert hook.run("app-secret-1").returncode == 0
    owner_url = URL.create(
        "postgresql+asyncpg",
        username=OWNER,
        password="owner-secret-1",
        host="127.0.0.1",
        port=hook.server.port,
        database=DATABASE,
    )
    migrate(owner_url)
    with hook.connect(APP, "app-secret-1") as app:
        tables = [row[0] for row in app.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "alembic_version" in tables
        assert len(tables) > 1
        assert app.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)  # wait-for-schema reads it
        for table in tables:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert app.execute("SELECT has_table_privilege(%s, %s)", (table, privilege)).fetchone() == (True,)
            for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
                assert app.execute("SELECT has_table_privilege(%s, %s)", (table, privilege)).fetchone() == (False,)
        sequences = [row[0] for row in app.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")]
        for sequence in sequences:
            assert app.execute("SELECT has_sequence_privilege(%s, 'USAGE')", (sequence,)).fetchone() == (True,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"DROP TABLE {tables[0]}")


def test_other_roles_may_not_connect_to_the_database(hook: Hook) -> None:
    assert hook.run("app-secret-1").returncode == 0
    with hook.superuser() as admin:
        admin.execute("CREATE ROLE outsider LOGIN PASSWORD 'outsider-secret'")
    hook.connect("outsider", "outsider-secret", dbname="postgres").close()
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        hook.connect("outsider", "outsider-secret").close()


def test_a_changed_secret_is_applied_at_the_next_start(hook: Hook) -> None:
    assert hook.run("app-secret-1").returncode == 0
    hook.connect(APP, "app-secret-1").close()
    # The Secret is re-generated (or rotated); the data directory stays.
    result = hook.run("app-secret-2", owner_password="owner-secret-2")
    assert result.returncode == 0, result.stderr
    hook.connect(APP, "app-secret-2").close()
    hook.connect(OWNER, "owner-secret-2").close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        hook.connect(APP, "app-secret-1").close()


def test_the_hook_fails_loudly_when_the_server_never_comes_up(hook: Hook) -> None:
    hook.server.executor.stop()
    result = hook.run("app-secret-1", wait_seconds=2)
    assert result.returncode == 1
    assert "did not accept TCP connections" in result.stderr
