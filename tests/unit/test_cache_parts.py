from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from app.auth.ratelimit import MemoryWindows
from app.platform.local_cache import LOCAL_TTL_CAP_SECONDS, LocalCache, entry_size
from app.platform.redis import CircuitBreaker
from app.products.money import Price, TotalOut


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=5, clock=clock)
    assert breaker.record_failure() is False
    assert breaker.record_failure() is False
    assert breaker.allow()
    assert breaker.record_failure() is True
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()  # half-open: one trial
    assert breaker.record_failure() is False  # fails: open again at once (it was open already)
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.is_closed
    assert breaker.allow()
    assert breaker.record_failure() is False  # the count started over


def test_half_open_lets_exactly_one_trial_through() -> None:
    """Finding 8: after the cool-down every caller used to go through at once."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.would_allow()
    assert [breaker.allow() for _ in range(10)] == [True] + [False] * 9
    assert not breaker.would_allow()
    clock.now += 60  # however long the trial takes, it stays the only one
    assert not breaker.allow()
    breaker.record_success()
    assert [breaker.allow() for _ in range(3)] == [True] * 3


def test_an_abandoned_trial_lets_the_next_caller_try() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()
    assert not breaker.allow()


def test_local_cache_expires_and_evicts_least_recently_used() -> None:
    clock = Clock()
    cache = LocalCache(max_entries=2, clock=clock)
    for key in ("a", "b"):
        cache.put(key, key.encode(), ttl=10, generation=cache.generation(key))
    assert cache.get("a") == b"a"  # a is now the most recent
    cache.put("c", b"c", ttl=10, generation=cache.generation("c"))
    assert cache.get("b") is None
    assert cache.get("a") == b"a"
    clock.now += 10
    assert cache.get("a") is None


def test_local_cache_entries_stored_together_expire_apart() -> None:
    # A warm-up stores many entries within a moment. Had they one lifetime,
    # they would all go to Redis in the same second, and again every cycle.
    clock = Clock()
    cache = LocalCache(max_entries=1_000, clock=clock)
    for n in range(1_000):
        cache.put(str(n), b"v", ttl=300, generation=cache.generation(str(n)))
    alive = []
    for seconds in (0.75, 0.9, 1.0):
        clock.now = 100.0 + seconds * LOCAL_TTL_CAP_SECONDS
        alive.append(sum(1 for n in range(1_000) if cache.get(str(n)) is not None))
    # Lifetimes spread evenly over 80-100% of the cap (48-60 s).
    assert alive[0] == 1_000
    assert 350 < alive[1] < 650
    assert alive[2] == 0


def test_local_cache_refuses_values_older_than_an_invalidation() -> None:
    cache = LocalCache(max_entries=10)
    before = cache.generation("k")
    cache.invalidate("k")  # a writer committed while the reader was computing
    cache.put("k", b"stale", ttl=10, generation=before)
    assert cache.get("k") is None
    cache.put("k", b"fresh", ttl=10, generation=cache.generation("k"))
    assert cache.get("k") == b"fresh"


def test_local_cache_clear_invalidates_in_flight_computations() -> None:
    cache = LocalCache(max_entries=10)
    before = cache.generation("k")
    cache.clear()
    cache.put("k", b"maybe stale", ttl=10, generation=before)
    assert cache.get("k") is None


def test_disabled_local_cache_stores_nothing() -> None:
    cache = LocalCache(max_entries=0)
    cache.put("k", b"v", ttl=10, generation=cache.generation("k"))
    assert cache.get("k") is None


def test_memory_windows_count_and_reset() -> None:
    clock = Clock()
    windows = MemoryWindows(clock=clock)
    assert windows.hit("k", 60) == (1, 60)
    clock.now += 59
    count, remaining = windows.hit("k", 60)
    assert count == 2
    assert remaining == pytest.approx(1)
    clock.now += 1
    assert windows.hit("k", 60)[0] == 1


class _Item(BaseModel):
    price: Price
    total: TotalOut


@pytest.mark.parametrize(("raw", "shown"), [("19.99", "19.99"), (19.99, "19.99"), ("5", "5.00"), (0.1, "0.10")])
def test_money_parses_exactly_and_renders_two_decimals(raw: object, shown: str) -> None:
    item = _Item.model_validate({"price": raw, "total": raw})
    assert isinstance(item.price, Decimal)
    assert item.price == Decimal(shown)
    assert json.loads(item.model_dump_json())["total"] == shown


# Strings are as strict as the OpenAPI pattern: no sign, exponent, blank or leading zero.
@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "1.001", "1000000000", "NaN", "Infinity", "1e400", True, "0.00", "+5", " 5", "1e2", "0005", "5.", ".5"],
)
def test_bad_prices_are_refused(raw: object) -> None:
    with pytest.raises(ValidationError):
        _Item.model_validate({"price": raw, "total": "1"})


def test_local_cache_is_bounded_in_bytes() -> None:
    """Finding 8: 10k large products used to take ~200 MB under an entry-count bound."""
    cache = LocalCache(max_entries=10_000, max_bytes=2 * 2**20)
    value = b"x" * 20_000
    for n in range(10_000):
        key = f"v1:product:{n}"
        cache.put(key, value, ttl=60, generation=cache.generation(key))
        assert cache.size_bytes <= cache.max_bytes
    assert len(cache) == 2 * 2**20 // entry_size("v1:product:9999", value)
    assert cache.get("v1:product:9999") == value  # the newest stay
    assert cache.get("v1:product:0") is None


def test_local_cache_accounting_covers_the_real_memory() -> None:
    """ENTRY_OVERHEAD_BYTES is not a guess: what tracemalloc sees allocated for
    the entries stays within what the cache counts."""
    cache = LocalCache(max_entries=100_000, max_bytes=512 * 2**20)
    keys = [f"v1:product:{n}" for n in range(20_000)]
    values = [bytes(100) for _ in keys]  # allocated before measuring: only the cache's own cost counts
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key, value in zip(keys, values, strict=True):
        cache.put(key, value, ttl=60, generation=cache.generation(key))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    counted_overhead = cache.size_bytes - sum(len(k) + len(v) for k, v in zip(keys, values, strict=True))
    assert 0 < grown <= counted_overhead


def test_a_value_larger_than_an_eighth_of_the_budget_is_not_kept() -> None:
    cache = LocalCache(max_entries=10, max_bytes=8 * 1024)
    cache.put("small", b"s", ttl=10, generation=cache.generation("small"))
    cache.put("huge", bytes(2000), ttl=10, generation=cache.generation("huge"))
    assert cache.get("huge") is None
    assert cache.get("small") == b"s"
    cache.invalidate("small")
    assert cache.size_bytes == 0
