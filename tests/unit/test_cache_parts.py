from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from app.auth.ratelimit import MemoryWindows
from app.platform.local_cache import LocalCache
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
    assert breaker.record_failure() is True  # fails again: open again at once
    assert not breaker.allow()
    clock.now += 5
    breaker.record_success()
    assert breaker.allow()
    assert breaker.record_failure() is False  # the count started over


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
