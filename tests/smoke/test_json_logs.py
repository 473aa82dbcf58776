"""Every line uvicorn and the app print is JSON, with `--log-config
app/platform/log_config.json` (as `make run`, the image and the chart start
it): startup, requests, a traceback, a malformed request, shutdown, and a
startup that fails before the app has configured anything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import port_for

from tests.support.http import serving
from tests.support.servers import REPO

LOG_CONFIG = REPO / "app" / "platform" / "log_config.json"
APP_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENVIRONMENT", "LOG_LEVEL", "DIAGNOSTIC_ROUTES")


def uvicorn(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "app.main:app", "--app-dir", str(REPO),
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--no-access-log",
        "--log-config", str(LOG_CONFIG),
    ]  # fmt: skip


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES and not k.startswith("OTEL_")}
    return {**env, **values}


def parsed(output: bytes) -> list[dict[str, Any]]:
    """Each line as JSON; fails on the first one that is not."""
    lines = []
    for line in output.decode().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not a JSON line: {line!r}") from exc
    return lines


def test_every_line_of_a_run_is_json(tmp_path: Path) -> None:
    port = port_for.select_random()
    base = f"http://127.0.0.1:{port}"
    env = environment(LOG_LEVEL="INFO", DIAGNOSTIC_ROUTES="true")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with serving(uvicorn(port), f"{base}/livez", within=30, cwd=tmp_path, env=env, **pipes) as server:
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/products/1").status_code in (404, 503)
            assert http.get("/_diag/error").status_code == 500
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            raw.recv(1024)
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=30)

    lines = parsed(stdout) + parsed(stderr)
    messages = [line["message"] for line in lines]
    for expected in (
        "Started server process",
        "Waiting for application startup.",
        "Application startup complete.",
        "Uvicorn running on",
        "Invalid HTTP request received.",
        "Shutting down",
        "Finished server process",
    ):
        assert any(message.startswith(expected) for message in messages), (expected, messages)
    [traceback] = [line for line in lines if line["message"] == "unhandled error"]
    assert "RuntimeError: diagnostic failure" in traceback["exc_info"]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert not any("color_message" in line for line in lines)


def test_a_failed_startup_is_json_too(tmp_path: Path) -> None:
    """The app refuses its settings before it configures logging: uvicorn's
    own configuration writes the traceback."""
    env = environment(ENVIRONMENT="production")
    result = subprocess.run(
        uvicorn(port_for.select_random()), cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False
    )

    assert result.returncode != 0
    lines = parsed(result.stdout) + parsed(result.stderr)
    assert any("SECRET_KEY must be set" in line.get("exc_info", "") for line in lines), lines
    assert any(line["message"] == "Application startup failed. Exiting." for line in lines)
