"""Waiting for a server that was just started."""

from __future__ import annotations

import time
from collections.abc import Callable

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
