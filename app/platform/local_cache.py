"""The in-process first level of the cache: a bounded LRU with expiry."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable

# Bound on how long a value may live in the in-process level, whatever its TTL.
LOCAL_TTL_CAP_SECONDS = 60.0
# Up to this share is taken off each entry's lifetime at random. Entries
# stored together (a warm-up, the refill after a clear()) would otherwise
# expire together, and send their reads to Redis in one burst at every expiry
# after that: bench/README.md measured ~7,700 such reads in one second
# stalling the cached hit.
LOCAL_TTL_JITTER = 0.2
# What one entry costs besides its key and value: the bytes and str headers,
# the (expiry, value) tuple, the float, the OrderedDict node (measured with
# tracemalloc on CPython 3.11: ~230 bytes; rounded up).
ENTRY_OVERHEAD_BYTES = 256


def entry_size(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD_BYTES


class LocalCache:
    """An LRU bounded in bytes (and entries), with per-entry expiry and
    per-key generations. Each lifetime is shortened by a random share of up
    to LOCAL_TTL_JITTER, so entries stored together expire apart.

    The byte bound is what protects the pod: ten thousand large products
    would be ~200 MB under an entry-count bound alone. A value larger than an
    eighth of the budget is not kept at all (it would evict most others).

    A value is stored only if no invalidation of its key happened since the
    caller captured the generation, so a slow reader cannot put back data
    that a writer has just invalidated.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int = 32 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._epoch = 0

    def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return value

    def generation(self, key: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(key, 0)

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: str, value: bytes, ttl: float, generation: tuple[int, int]) -> None:
        if self.max_entries == 0 or self.generation(key) != generation:
            return
        size = entry_size(key, value)
        if size * 8 > self.max_bytes:
            self._drop(key)
            return
        self._drop(key)
        spread = LOCAL_TTL_JITTER * random.random()  # noqa: S311 (jitter, not security)
        lifetime = min(ttl, LOCAL_TTL_CAP_SECONDS) * (1 - spread)
        self._data[key] = (self._clock() + lifetime, value)
        self.size_bytes += size
        while len(self._data) > self.max_entries or self.size_bytes > self.max_bytes:
            oldest, (_, old_value) = self._data.popitem(last=False)
            self.size_bytes -= entry_size(oldest, old_value)

    def _drop(self, key: str) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self.size_bytes -= entry_size(key, entry[1])

    def invalidate(self, key: str) -> None:
        self._drop(key)
        self._generations[key] = self._generations.get(key, 0) + 1
        if len(self._generations) > 10 * max(self.max_entries, 1_000):
            self.clear()

    def clear(self) -> None:
        """Drops everything; in-flight computations will not store (new epoch)."""
        self._data.clear()
        self.size_bytes = 0
        self._generations.clear()
        self._epoch += 1
