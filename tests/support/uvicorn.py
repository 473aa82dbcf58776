"""The app as a real uvicorn subprocess, with the image's command line: what
an in-process ASGI transport cannot show (the order of the commit and the
response bytes, sockets, thread pools, timeouts) shows here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for

from tests.conftest import TEST_SECRET
from tests.support.http import serving
from tests.support.servers import REPO

# As tests/conftest.py's make_settings: cheap Argon2 and no attempt limits,
# unless a test sets its own.
BASE_ENV = {
    "SECRET_KEY": TEST_SECRET,
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "1024",
    "PASSWORD_HASH_PARALLELISM": "1",
    "LOG_LEVEL": "WARNING",
    "LOGIN_RATE_LIMIT": "100000",
    "LOGIN_ADDRESS_RATE_LIMIT": "100000",
    "LOGIN_ACCOUNT_FREE_FAILURES": "1000",
    "REGISTER_RATE_LIMIT": "100000",
    "DIAGNOSTIC_ROUTES": "true",
}


@dataclass(frozen=True)
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def image_command(*, app: str, host: str, port: int) -> list[str]:
    """The image's own uvicorn command line (the Dockerfile's CMD), serving
    `app` on host:port: the flags under test (--no-proxy-headers, say) are
    the ones production runs, not a copy that could drift."""
    dockerfile = (REPO / "Dockerfile").read_text()
    [cmd] = [json.loads(line.removeprefix("CMD ")) for line in dockerfile.splitlines() if line.startswith("CMD [")]
    assert cmd[:2] == ["uvicorn", "app.main:app"], cmd
    command: list[str] = ["uvicorn", app, *cmd[2:]]
    command[command.index("--host") + 1] = host
    command[command.index("--port") + 1] = str(port)
    return command


@contextmanager
def uvicorn_server(env: Mapping[str, object], *, app: str = "app.main:app") -> Iterator[Server]:
    """Serves `app` on a free loopback port with BASE_ENV plus `env`."""
    port = port_for.select_random()
    full_env = {**os.environ, **BASE_ENV, **{k: str(v) for k, v in env.items()}, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", *image_command(app=app, host="127.0.0.1", port=port)]
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        try:
            with serving(
                command, f"{base}/livez", within=30, cwd=REPO, env=full_env, stdout=log, stderr=log
            ) as process:
                yield Server(base=base, process=process, log=log_path)
        except BaseException:
            # What the server said is what explains a failure: show its end.
            print(f"\n--- {app} output (last 4000 characters) ---\n{log_path.read_text(errors='replace')[-4000:]}")
            raise
        finally:
            log_path.unlink(missing_ok=True)
