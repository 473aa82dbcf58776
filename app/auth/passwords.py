"""Password hashing off the event loop, with a bounded queue.

Passwords use Argon2id (pwdlib): memory-hard, the first choice of RFC 9106 and
OWASP, and free of bcrypt's silent 72-byte truncation, so the 128-character
password limit of the API holds for every character set.

Each hash costs ~0.1 s of CPU and 64 MiB, so at most `concurrency` run at once.
Callers beyond that wait in a queue of at most `queue` places; a caller that
finds the queue full is refused at once (`HashingBusy`, a 503 with
Retry-After) instead of waiting without bound. The worst wait is then about
(queue / concurrency) hashes, and a login flood cannot pile up requests (nor
anything they hold) behind the hash slots. Callers must hold no database
connection while they hash (see app/auth/service.py).

The hashes run in their own threads at a lower CPU priority (a higher nice
value; Linux keeps one per thread and Argon2's lane threads inherit it): with
parallelism 4, two hashes are eight busy threads, and at equal priority they
would leave the event loop a ninth of the CPU, so that even the instant
refusals of a login flood would arrive seconds late.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth.exceptions import HashingBusy
from app.platform.config import Settings

T = TypeVar("T")

# Nice 10 weighs ~9x less than the event loop's nice 0 in the Linux scheduler
# (110 against 1024). Both ends were measured and both fail someone:
# - nice 0: under a login flood the slowest refusal took 1.9 s, not 0.7 s
#   (tests/integration/test_faults.py), the hashes crowding the event loop;
# - nice 19 (15 against 1024): with the event loop saturating its core,
#   the hashes got a few percent of it and logins starved (90 s soak,
#   bench/README.md: 13 of 91 logins refused, login p50 16 s);
#   at nice 10 the same soak had every login answered (p50 0.9 s) for 8%
#   less of the other traffic.
HASH_THREAD_NICENESS = 10


def _yield_cpu_to_the_event_loop() -> None:
    """Runs first in each hash thread. Where the platform has no per-thread
    priority (or forbids it), the hash simply runs at normal priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


class HashSlots:
    """At most `concurrency` holders; at most `queue` more waiting; the rest refused."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._queue = queue
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def full(self) -> bool:
        """A caller arriving now would be refused."""
        return self._slots.locked() and self._waiting >= self._queue

    async def __aenter__(self) -> None:
        if self._slots.locked():
            if self._waiting >= self._queue:
                raise HashingBusy()
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()

    async def __aexit__(self, *_: object) -> None:
        self._slots.release()


class PasswordHasher:
    """Argon2id hashing in worker threads, at most `concurrency` at a time."""

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_kib,
                    parallelism=settings.password_hash_parallelism,
                ),
            )
        )
        self.slots = HashSlots(settings.password_hash_concurrency, settings.password_hash_queue)
        # One thread per slot, started on first use.
        self._threads = ThreadPoolExecutor(
            max_workers=settings.password_hash_concurrency,
            thread_name_prefix="argon2",
            initializer=_yield_cpu_to_the_event_loop,
        )
        self._dummy_hash: str | None = None

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        async with self.slots:
            return await asyncio.get_running_loop().run_in_executor(self._threads, partial(func, *args))

    def close(self) -> None:
        """Stops the hash threads once the hash in progress, if any, ends."""
        self._threads.shutdown(wait=False)

    async def warm_up(self) -> str:
        """Prepare (once) the hash that unknown-user logins are checked against."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._in_thread(self._hash.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def hash(self, password: str) -> str:
        return await self._in_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Returns (valid, new hash when the stored one uses outdated parameters)."""
        return await self._in_thread(self._hash.verify_and_update, password, password_hash)

    async def burn_time(self, password: str) -> None:
        """Spend what a real verification costs, so an unknown user and a wrong
        password cannot be told apart by timing."""
        await self._in_thread(self._hash.verify, password, await self.warm_up())
