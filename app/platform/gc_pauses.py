"""Garbage-collector pauses: kept short, and measured.

A full collection walks every object the collector tracks, and every request
in flight waits for it. After startup that is ~145k objects (modules,
classes, functions) that live as long as the process: a full collection took
62-98 ms (bench/README.md). At saturation one came every second: the objects
of requests in flight at young collections are promoted, and count towards
the next full one. So a backlog brought more of them, and each pause let
requests pile up.

Moving what startup built into the permanent generation, which collections
skip, brought full collections to 4-7 ms. The histogram shows the pauses in
production too.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Everything alive now is left out of collections until the block ends.

    No collection first: it would cost every start (and every test app) a
    walk of the whole heap, to free the few cycles startup leaves behind.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class GcPauseMetrics:
    """Records how long each collection held the process, by generation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        histogram = Histogram(
            "python_gc_pause_seconds",
            "How long each garbage collection paused the process, by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self._by_generation = [histogram.labels(str(generation)) for generation in range(3)]
        self._started = 0.0

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)

    def start(self) -> None:
        gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
