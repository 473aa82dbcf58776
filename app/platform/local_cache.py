"""The in-process first level of the cache: a bounded LRU with expiry."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# Bound on how long a value may live in the in-process level, whatever its TTL.
LOCAL_TTL_CAP_SECONDS = 60.0


class LocalCache:
    """A bounded LRU with per-entry expiry and per-key generations.

    A value is stored only if no invalidation of its key happened since the
    caller captured the generation, so a slow reader cannot put back data
    that a writer has just invalidated.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
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
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def generation(self, key: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(key, 0)

    def put(self, key: str, value: bytes, ttl: float, generation: tuple[int, int]) -> None:
        if self.max_entries == 0 or self.generation(key) != generation:
            return
        self._data[key] = (self._clock() + min(ttl, LOCAL_TTL_CAP_SECONDS), value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def invalidate(self, key: str) -> None:
        self._data.pop(key, None)
        self._generations[key] = self._generations.get(key, 0) + 1
        if len(self._generations) > 10 * max(self.max_entries, 1_000):
            self.clear()

    def clear(self) -> None:
        """Drops everything; in-flight computations will not store (new epoch)."""
        self._data.clear()
        self._generations.clear()
        self._epoch += 1
