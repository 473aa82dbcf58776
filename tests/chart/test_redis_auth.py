"""The bundled Redis's start script and probes, run for real against
redis-server: the password comes from the mounted Secret file (quotes and
backslashes included) and is required; the probes pass only with it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import port_for
import pytest

from tests.chart.conftest import Manifest, one, render

PASSWORD = 'pa"ss\\wo rd'


def redis_container(manifests: list[Manifest]) -> Manifest:
    container: Manifest = one(manifests, "StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"][0]
    return container


def local(text: str, tmp_path: Path) -> str:
    """The container's paths, moved under tmp_path."""
    return text.replace("/var/run/secrets/redis", str(tmp_path)).replace("/run/redis", str(tmp_path))


@pytest.fixture
def redis(helm_available: None, tmp_path: Path) -> Iterator[tuple[Manifest, int]]:
    container = redis_container(render())
    (tmp_path / "password").write_text(PASSWORD)
    port = port_for.select_random()
    command = [*container["command"][:2], local(container["command"][2], tmp_path), *container["command"][3:]]
    args = [*container["args"], "--port", str(port), "--bind", "127.0.0.1"]
    server = subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        yield container, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def probe(container: Manifest, port: int, tmp_path: Path) -> int:
    script = local(container["readinessProbe"]["exec"]["command"][2], tmp_path).replace(
        "-h 127.0.0.1", f"-h 127.0.0.1 -p {port}"
    )
    return subprocess.run(["sh", "-c", script], capture_output=True, timeout=10).returncode


def test_redis_requires_the_password_of_the_mounted_file(redis: tuple[Manifest, int], tmp_path: Path) -> None:
    _, port = redis
    anonymous = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    authenticated = subprocess.run(
        ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, env={"REDISCLI_AUTH": PASSWORD}
    )
    assert authenticated.stdout.strip() == "PONG"
    assert (tmp_path / "auth.conf").stat().st_mode & 0o077 == 0  # umask 077


def test_the_probes_pass_only_with_the_password(redis: tuple[Manifest, int], tmp_path: Path) -> None:
    container, port = redis
    assert container["livenessProbe"]["exec"] == container["readinessProbe"]["exec"]
    assert probe(container, port, tmp_path) == 0
    (tmp_path / "password").write_text("wrong")
    assert probe(container, port, tmp_path) != 0
