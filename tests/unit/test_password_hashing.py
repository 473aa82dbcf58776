from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from app.auth.exceptions import HashingBusy
from app.auth.passwords import HASH_THREAD_NICENESS, PasswordHasher
from app.platform.config import Settings
from tests.conftest import make_settings


async def test_production_parameters_are_argon2id_owasp() -> None:
    hasher = PasswordHasher(Settings())
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert (await hasher.verify("correct horse battery", hashed))[0] is True
    assert (await hasher.verify("wrong", hashed))[0] is False


async def test_long_unicode_passwords_are_not_truncated() -> None:
    """bcrypt ignores bytes past 72; Argon2id does not."""
    hasher = PasswordHasher(make_settings())
    password = "é" * 100  # 200 bytes
    hashed = await hasher.hash(password)
    assert (await hasher.verify(password[:-1] + "e", hashed))[0] is False


async def test_hashing_does_not_block_the_event_loop() -> None:
    """While real-cost hashes run, the loop keeps serving other tasks. A hash
    on the loop would let the ticker run only before and after it."""
    hasher = PasswordHasher(Settings())  # real cost: ~0.1 s per hash here
    ticks = 0
    hashing = asyncio.gather(*(hasher.hash(f"password-{i}") for i in range(4)))
    while not hashing.done():
        ticks += 1
        await asyncio.sleep(0.001)
    await hashing
    assert ticks >= 20


async def test_concurrent_hashes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHasher(make_settings(password_hash_concurrency=2))
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow_hash(password: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return "hashed"

    monkeypatch.setattr(hasher._hash, "hash", slow_hash)
    await asyncio.gather(*(hasher.hash("x") for _ in range(8)))
    assert peak == 2


async def test_outdated_parameters_are_upgraded_on_verify() -> None:
    weak = PasswordHasher(make_settings(password_hash_time_cost=1))
    stronger = PasswordHasher(make_settings(password_hash_time_cost=2))
    hashed = await weak.hash("correct horse battery")
    valid, upgraded = await stronger.verify("correct horse battery", hashed)
    assert valid
    assert upgraded is not None
    assert ",t=2," in upgraded


async def test_a_full_hash_queue_refuses_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 5: callers beyond the slots and the queue get HashingBusy (503)
    without waiting; the others are served."""
    hasher = PasswordHasher(make_settings(password_hash_concurrency=2, password_hash_queue=3))
    release = threading.Event()

    def blocked_hash(password: str) -> str:
        release.wait(5)
        return "hashed"

    monkeypatch.setattr(hasher._hash, "hash", blocked_hash)
    queued = [asyncio.create_task(hasher.hash("x")) for _ in range(5)]  # 2 running + 3 waiting
    while hasher.slots.waiting < 3:  # noqa: ASYNC110 - waiting for the queue to fill is the point
        await asyncio.sleep(0.001)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(HashingBusy):
        await hasher.hash("one too many")
    assert loop.time() - started < 0.05  # refused, not queued
    release.set()
    assert await asyncio.gather(*queued) == ["hashed"] * 5
    assert hasher.slots.waiting == 0
    assert await hasher.hash("room again") == "hashed"


async def test_a_cancelled_waiter_gives_its_place_back(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHasher(make_settings(password_hash_concurrency=1, password_hash_queue=1))
    release = threading.Event()
    monkeypatch.setattr(hasher._hash, "hash", lambda _: release.wait(5) and "hashed")
    running = asyncio.create_task(hasher.hash("a"))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(hasher.hash("b"))
    await asyncio.sleep(0.01)
    assert hasher.slots.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert hasher.slots.waiting == 0
    release.set()
    assert await running == "hashed"


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread priority on this platform")
async def test_hashes_run_at_a_lower_priority_than_the_event_loop() -> None:
    """Argon2's lane threads inherit the priority of the thread that starts
    the hash; a login flood must not take the CPU from the event loop."""
    hasher = PasswordHasher(make_settings())
    seen: list[tuple[int, int]] = []

    def record(_: str) -> str:
        seen.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.get_native_id()))
        return "hashed"

    hasher._hash.hash = record  # type: ignore[method-assign,assignment]
    try:
        assert await hasher.hash("anything") == "hashed"
    finally:
        hasher.close()
    [(priority, thread)] = seen
    assert thread != threading.get_native_id()
    assert priority == HASH_THREAD_NICENESS > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
