"""Where the benchmark's tools are, and which core each side runs on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The servers under test (and nothing else) on core 0; load generators,
# PostgreSQL, Redis and the fault proxy on core 1. See bench/README.md.
SERVER_CPU = "0"
LOAD_CPU = "1"


class MissingTool(RuntimeError):
    pass


def tool(name: str) -> str:
    """The path of `name`: the repo's bin/ first (vegeta is built there by
    `make bench-tools`), then the virtualenv (py-spy), then PATH."""
    for candidate in (REPO / "bin" / name, Path(sys.executable).parent / name):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise MissingTool(f"{name} is missing: `make bench-tools` installs wrk and builds vegeta into bin/")
    return found


def on_load_cpu(command: list[str]) -> list[str]:
    return ["taskset", "-c", LOAD_CPU, *command]


def on_server_cpu(command: list[str]) -> list[str]:
    return ["taskset", "-c", SERVER_CPU, *command]


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per core, from /proc/stat."""
    times: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(v) for v in fields]
            idle = values[3] + values[4]  # idle + iowait
            times[name[3:]] = (sum(values) - idle, sum(values))
    return times


def busy_share(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], cpu: str) -> float:
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return busy / total if total else 0.0


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS:") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM:") / 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 10) -> None:
    """Until 127.0.0.1:port accepts a connection; fails if `process` exits."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
