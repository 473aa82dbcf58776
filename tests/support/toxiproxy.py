"""Toxiproxy: a TCP proxy that injects faults (latency, blackholes, cut
connections) between the app and PostgreSQL or Redis.

The tests start `toxiproxy-server` themselves on loopback ports and stop it by
PID. The binary is found through TOXIPROXY_SERVER, by default bin/toxiproxy-server
(built from its Go module by `make test-tools`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import port_for

from tests.support.http import wait_for_http
from tests.support.servers import REPO


def toxiproxy_binary() -> Path:
    return Path(os.environ.get("TOXIPROXY_SERVER", str(REPO / "bin" / "toxiproxy-server")))


@dataclass(frozen=True)
class Proxy:
    api: str
    name: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        async with httpx.AsyncClient(base_url=self.api, timeout=5) as http:
            response = await http.request(method, path, json=body)
            response.raise_for_status()

    async def add_toxic(self, name: str, kind: str, stream: str = "downstream", **attributes: Any) -> None:
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        await self._call("POST", f"/proxies/{self.name}/toxics", body)

    async def remove_toxic(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{self.name}/toxics/{name}")

    @asynccontextmanager
    async def toxic(self, kind: str, **attributes: Any) -> AsyncIterator[None]:
        """The toxic on both directions while the block runs."""
        names = [f"{kind}-{stream}" for stream in ("upstream", "downstream")]
        for name, stream in zip(names, ("upstream", "downstream"), strict=True):
            await self.add_toxic(name, kind, stream, **attributes)
        try:
            yield
        finally:
            for name in names:
                await self.remove_toxic(name)

    async def set_enabled(self, enabled: bool) -> None:
        """Disabled: every connection is cut and new ones are refused."""
        await self._call("POST", f"/proxies/{self.name}", {"enabled": enabled})


@dataclass(frozen=True)
class Toxiproxy:
    api: str

    def proxy(self, name: str, upstream: tuple[str, int]) -> Proxy:
        port = port_for.select_random()
        body = {"name": name, "listen": f"127.0.0.1:{port}", "upstream": f"{upstream[0]}:{upstream[1]}"}
        httpx.post(f"{self.api}/proxies", json=body, timeout=5).raise_for_status()
        return Proxy(api=self.api, name=name, port=port)

    def delete(self, proxy: Proxy) -> None:
        httpx.delete(f"{self.api}/proxies/{proxy.name}", timeout=5).raise_for_status()


@contextmanager
def toxiproxy_server() -> Iterator[Toxiproxy]:
    binary = toxiproxy_binary()
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(
            f"{binary} is missing: `make test-tools` builds it (or set TOXIPROXY_SERVER to a toxiproxy-server binary)"
        )
    port = port_for.select_random()
    process = subprocess.Popen(
        [str(binary), "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}"
        wait_for_http(f"{api}/version", alive=lambda: process.poll() is None, within=15)
        yield Toxiproxy(api=api)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
