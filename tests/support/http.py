"""Waiting for a server that was just started."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx


class NotServing(RuntimeError):
    pass


def wait_for_http(url: str, *, alive: Callable[[], bool] = lambda: True, within: float = 60) -> None:
    """Polls `url` until it answers 200. Fails at once when `alive()` says the
    server is gone (it exited during startup), or after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not alive():
            raise NotServing(f"the server behind {url} exited before it answered")
        time.sleep(0.1)
    raise NotServing(f"{url} did not answer 200 within {within} s")


@contextmanager
def serving(
    command: Sequence[str], health_url: str, *, within: float = 60, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts `command`, waits until `health_url` answers 200, yields the
    process; stops it (SIGTERM, then SIGKILL) unless it already ended."""
    process: subprocess.Popen[bytes] = subprocess.Popen(command, **popen)
    try:
        wait_for_http(health_url, alive=lambda: process.poll() is None, within=within)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
