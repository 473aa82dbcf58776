"""Driving the developer loop (`make dev`, `make dev-run`, `make dev-delete`)
the way a developer runs it, in a copy of this tree: the scenario edits a
source file there, never in the clone under test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.e2e.kube import REPO_ROOT

# What skaffold prints once its file watcher has taken its starting state.
WATCHING = "Watching for changes..."
PORT_FORWARD = re.compile(r"Port forwarding service/\S+ in namespace \S+, remote port 80 -> http://127\.0\.0\.1:(\d+)")
# make must not see the e2e run's own make invocation (MAKEFLAGS carries its
# command-line variables): the developer's shell has none of it.
MAKE_ENV_NOISE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def copy_tree(destination: Path) -> Path:
    """The files git would give a fresh clone (tracked and not ignored), as
    they are now in this working tree."""
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def developer_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in MAKE_ENV_NOISE}


def make(tree: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args], cwd=tree, env=developer_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


class DevSession:
    """`make dev [PROFILES=...]` as a subprocess in its own process group;
    stopped like Ctrl+C (SIGINT to that group), so skaffold cleans up."""

    def __init__(self, tree: Path, log: Path, profiles: str = "") -> None:
        self.tree = tree
        self.log_path = log
        self.profiles = profiles
        self.process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> DevSession:
        args = ["make", "dev", *([f"PROFILES={self.profiles}"] if self.profiles else [])]
        with self.log_path.open("wb") as sink:
            self.process = subprocess.Popen(
                args, cwd=self.tree, env=developer_env(), stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def url(self) -> str | None:
        """The port-forward skaffold announced last (it re-announces after a redeploy)."""
        ports = PORT_FORWARD.findall(self.log())
        return f"http://127.0.0.1:{ports[-1]}" if ports else None

    def get(self, path: str) -> httpx.Response | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"make dev exited ({self.process.returncode}):\n{self.log()[-5000:]}")
        url = self.url()
        if url is None:
            return None
        try:
            return httpx.get(f"{url}{path}", timeout=3)
        except httpx.TransportError:
            return None  # not forwarded yet, or following a new pod

    def wait_serving(self, timeout: float = 600) -> str:
        """Until skaffold port-forwards, the API answers through it, and
        skaffold watches the sources (it lists them only after the
        port-forward: an edit before that is part of its starting state and
        would never be rebuilt)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.get("/health")
            if response is not None and response.status_code == 200 and WATCHING in self.log():
                return response.text
            time.sleep(1)
        raise AssertionError(f"make dev did not serve within {timeout:.0f} s:\n{self.log()[-5000:]}")

    def edit_to_served(self, source: Path, old: str, new: str, served: str, timeout: float = 300) -> float:
        """Replaces `old` with `new` in a source file (as an editor saves it)
        and returns the seconds until /health's body contains `served`
        through the port-forward."""
        text = source.read_text()
        assert old in text, f"{old!r} not in {source}"
        source.write_text(text.replace(old, new))
        saved = time.monotonic()
        while time.monotonic() < saved + timeout:
            response = self.get("/health")
            if response is not None and served in response.text:
                return round(time.monotonic() - saved, 1)
            time.sleep(0.5)
        raise AssertionError(f"{served!r} was not served within {timeout:.0f} s:\n{self.log()[-5000:]}")

    def stop(self, timeout: float = 240) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"make dev did not stop within {timeout} s:\n{self.log()[-3000:]}") from None
        return self.process.returncode

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
