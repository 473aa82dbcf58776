"""A slow database: a TCP proxy that holds every reply from PostgreSQL for a
fixed delay before passing it on, in order. Each round trip to the database
then takes at least that long, as with a loaded or distant server.

    python -m bench.slowdb --port 6000 --upstream 127.0.0.1:5432 --delay-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import port_for
import uvloop

from bench.tools import REPO, on_load_cpu, wait_for_port

CLOCK_TICK = 0.001


class _Delayed(asyncio.Protocol):
    """Writes what it receives to `peer` after `delay` seconds, in order."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.peer: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._unsent: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.delay <= 0 and not self._queue:
            self._write(data)
            return
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time() + self.delay, data))
        if self._timer is None:
            self._timer = loop.call_later(self.delay, self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        # uvloop's clock has millisecond resolution: what is due within one
        # tick goes now, and a timer is never set for less than a tick (a
        # zero-delay timer would spin on a clock that does not move).
        while self._queue and self._queue[0][0] <= now + CLOCK_TICK:
            self._write(self._queue.popleft()[1])
        if self._queue:
            self._timer = loop.call_later(max(self._queue[0][0] - now, CLOCK_TICK), self._flush)
        elif self._closing and self.peer is not None:
            self.peer.close()

    def _write(self, data: bytes) -> None:
        if self.peer is None:
            self._unsent.append(data)  # the other side is still connecting
        elif not self.peer.is_closing():
            self.peer.write(data)

    def connect_to(self, peer: asyncio.Transport) -> None:
        self.peer = peer
        while self._unsent:
            self._write(self._unsent.pop(0))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if not self._queue and self.peer is not None:
            self.peer.close()


class _ClientSide(_Delayed):
    """The application's side: passes its bytes on at once (holding what
    arrives before upstream is connected), and opens the upstream connection
    whose replies are delayed."""

    def __init__(self, upstream: tuple[str, int], reply_delay: float) -> None:
        super().__init__(0.0)
        self._upstream = upstream
        self._reply_delay = reply_delay
        self._connecting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        try:
            upstream, replies = await asyncio.get_running_loop().create_connection(
                lambda: _Delayed(self._reply_delay), *self._upstream
            )
        except OSError:
            self.transport.close()
            return
        replies.connect_to(self.transport)
        if self.transport.is_closing():  # the client left while we connected
            upstream.close()
            return
        self.connect_to(upstream)


async def _serve(port: int, upstream: tuple[str, int], delay: float) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _ClientSide(upstream, delay), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


@contextmanager
def slow_database(host: str, port: int, delay_ms: float) -> Iterator[tuple[str, int]]:
    """Starts the proxy (on the load core) in front of host:port."""
    listen = port_for.select_random()
    command = [sys.executable, "-m", "bench.slowdb", "--port", str(listen)]
    command += ["--upstream", f"{host}:{port}", "--delay-ms", str(delay_ms)]
    process = subprocess.Popen(on_load_cpu(command), cwd=REPO)
    try:
        wait_for_port(listen, process)
        yield "127.0.0.1", listen
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port")
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    uvloop.run(_serve(args.port, (host, int(port)), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
