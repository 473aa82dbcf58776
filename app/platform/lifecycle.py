"""Process lifecycle: shutdown state for readiness, SIGTERM drain, event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)


class ShutdownState:
    """Set as soon as shutdown begins, so /readyz answers 503 from then on."""

    def __init__(self) -> None:
        self.shutting_down = False


def install_sigterm_drain(state: ShutdownState, drain_seconds: float) -> Callable[[], None]:
    """Chain a SIGTERM handler in front of the server's own (uvicorn's).

    On SIGTERM, readiness turns 503 at once; the server keeps serving for
    `drain_seconds` so load balancers see it and stop routing here, then the
    server's handler runs its graceful shutdown (stop accepting, finish
    in-flight requests). A second SIGTERM skips the rest of the drain.
    Returns a function that restores the previous handler.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        # Not under a server that handles SIGTERM (tests, ASGI transports).
        return lambda: None
    loop = asyncio.get_running_loop()
    server_handler: Callable[[int, FrameType | None], Any] = previous

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        already = state.shutting_down
        state.shutting_down = True
        if already or drain_seconds <= 0:
            server_handler(signum, frame)
            return
        log.info("SIGTERM received: readiness is now 503, draining", extra={"drain_seconds": drain_seconds})
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, server_handler, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return restore


class LoopLagMonitor:
    """Measures how late the event loop wakes a sleeping task.

    A lag well above zero means something blocks the loop (CPU work or a
    blocking call on it), which delays every request in the process.
    """

    def __init__(self, registry: CollectorRegistry, interval: float = 0.25) -> None:
        self.interval = interval
        self.gauge = Gauge(
            "event_loop_lag_seconds", "Delay of the last event-loop wake-up beyond its schedule", registry=registry
        )
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            scheduled = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.gauge.set(max(0.0, loop.time() - scheduled))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
