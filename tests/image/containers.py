"""Docker helpers for the image suite: run the image the way the cluster runs
it (hardened), and always remove each container by its id."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.http import NotServing, wait_for_http

# The Debian client; /usr/local/bin/docker may be a newer one without BuildKit.
DOCKER = os.environ.get("DOCKER") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")

# What the Helm chart asks of the pod (Pod Security Standard "restricted"):
# read-only root with a writable /tmp, no capabilities, no privilege
# escalation. Host networking: the test servers listen on the host's loopback.
HARDENED = (
    "--read-only",
    "--tmpfs", "/tmp",  # noqa: S108  (the container's own /tmp, a fresh tmpfs)
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--network", "host",
)  # fmt: skip
TEST_LABEL = "org.storefront.test=image"


class DockerError(AssertionError):
    pass


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    return result


def inspect(ref: str, kind: str = "image") -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker(kind, "inspect", ref).stdout)
    return data[0]


def env_options(env: Mapping[str, str]) -> list[str]:
    return [option for key, value in env.items() for option in ("--env", f"{key}={value}")]


@dataclass(frozen=True)
class Container:
    id: str

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = inspect(self.id, "container")["State"]
        return state

    def exec(self, *command: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return docker("exec", *env_options(env or {}), self.id, *command, check=False)

    def wait(self, timeout: float) -> int:
        """The exit code, once the container has stopped."""
        try:
            result = docker("wait", self.id, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DockerError(f"container still running after {timeout} s:\n{self.logs()}") from None
        return int(result.stdout.strip())


@contextmanager
def container(
    image: str, *command: str, env: Mapping[str, str] | None = None, options: Sequence[str] = ()
) -> Iterator[Container]:
    """`docker run --detach` hardened; removed by id when the block ends, even
    when `docker run` itself fails after creating it (hence --cidfile)."""
    with tempfile.TemporaryDirectory(prefix="storefront-image-") as tmp:
        cidfile = Path(tmp) / "cid"
        run = docker(
            "run", "--detach", f"--cidfile={cidfile}", "--label", TEST_LABEL,
            *HARDENED, *options, *env_options(env or {}), image, *command,
            check=False,
        )  # fmt: skip
        cid = cidfile.read_text().strip() if cidfile.exists() else ""
        try:
            if run.returncode != 0:
                raise DockerError(f"docker run exited {run.returncode}:\n{run.stderr}")
            handle = Container(cid)
            try:
                yield handle
            finally:
                # Shown by pytest when the test fails.
                print(f"--- logs of container {cid[:12]} ---\n{handle.logs()}")
        finally:
            if cid:
                docker("rm", "--force", "--volumes", cid, check=False)


def run_to_completion(
    image: str,
    *command: str,
    env: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    timeout: float = 120,
) -> tuple[int, str]:
    """Run a command in a hardened container; its exit code and output."""
    with container(image, *command, env=env, options=options) as handle:
        code = handle.wait(timeout)
        return code, handle.logs()


def server_command(image_config: Mapping[str, Any], port: int) -> list[str]:
    """The image's own CMD, listening on `port` instead of 8000: with host
    networking a fixed port could be taken on the machine."""
    command = list(image_config["Cmd"])
    command[command.index("--port") + 1] = str(port)
    return command


def wait_until_serving(handle: Container, base_url: str, timeout: float = 60) -> None:
    try:
        wait_for_http(f"{base_url}/livez", alive=lambda: bool(handle.state()["Running"]), within=timeout)
    except NotServing as exc:
        raise DockerError(f"{exc} (exit code {handle.state()['ExitCode']}):\n{handle.logs()}") from exc
