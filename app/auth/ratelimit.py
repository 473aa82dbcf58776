"""Attempt limits for login and registration.

Counted in Redis so every replica shares them (one atomic script call per
step); while Redis is unusable each process falls back to its own in-memory
state, so throttling degrades but never fails open.

Logins have three limits, none of which an attacker can turn against an
account's owner (README, "Login limits"):

- per client address, every attempt (`LOGIN_ADDRESS_RATE_LIMIT` per window):
  one address spraying many accounts;
- per (client address, account), failed attempts (`LOGIN_RATE_LIMIT` per
  window, then 429): one address guessing one account. Only that address is
  refused;
- per account, failures from *unfamiliar* addresses: after
  `LOGIN_ACCOUNT_FREE_FAILURES` of them, unfamiliar addresses may try only one
  at a time, spaced by a delay that doubles with every further failure (1 s,
  2 s, 4 s ... up to `LOGIN_ACCOUNT_MAX_DELAY_SECONDS`): a distributed guesser
  gets a few guesses an hour. An address where the account signed in
  successfully within `LOGIN_FAMILIAR_DAYS` is familiar: the account-wide
  delay never applies to it and its failures do not feed it, so an attack from
  rotating addresses cannot lock the owner out of their usual devices.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from redis.asyncio import Redis

from app.auth.exceptions import TooManyAttempts
from app.platform.config import Settings
from app.platform.redis import RedisGuard, Unavailable

T = TypeVar("T")

# INCR, start the window on the first hit, and report the time left in it.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""
# Give back an attempt that turned out not to count (it succeeded). Never
# creates the key: an expired window stays expired.
_REFUND = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""
# Account-wide delay for unfamiliar addresses. Returns 0 when admitted, else
# the milliseconds to wait. An admitted attempt past the free failures moves
# `next_at` on at once, so concurrent unfamiliar attempts wait for it too.
_ACCOUNT_ADMIT = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local free = tonumber(ARGV[1])
if failures < free then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local next_at = tonumber(redis.call('HGET', KEYS[1], 'next_at') or '0')
if now < next_at then return next_at - now end
local delay = math.min(1000 * 2 ^ (failures - free), tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'next_at', math.floor(now + delay))
return 0
"""
_ACCOUNT_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return failures
"""
MEMORY_MAX_KEYS = 100_000


def account_delay(failures: int, free: int, max_delay: float) -> float:
    """Seconds an unfamiliar address waits after `failures` account-wide failures."""
    if failures < free:
        return 0.0
    return float(min(2.0 ** (failures - free), max_delay))


class _Bounded(OrderedDict[str, T]):
    def put(self, key: str, value: T) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MEMORY_MAX_KEYS:
            self.popitem(last=False)


class MemoryWindows:
    """The same state as in Redis, in this process only (the fallback)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: _Bounded[tuple[int, float]] = _Bounded()
        self._accounts: _Bounded[tuple[int, float, float]] = _Bounded()  # failures, next_at, expires_at
        self._known: _Bounded[float] = _Bounded()

    def hit(self, key: str, window: float) -> tuple[int, float]:
        now = self._clock()
        count, resets_at = self._windows.get(key, (0, now + window))
        if resets_at <= now:
            count, resets_at = 0, now + window
        self._windows.put(key, (count + 1, resets_at))
        return count + 1, resets_at - now

    def refund(self, key: str) -> None:
        if (entry := self._windows.get(key)) is not None and entry[1] > self._clock():
            self._windows[key] = (max(0, entry[0] - 1), entry[1])

    def _account(self, key: str) -> tuple[int, float, float]:
        entry = self._accounts.get(key)
        if entry is None or entry[2] <= self._clock():
            return 0, 0.0, 0.0
        return entry

    def account_admit(self, key: str, free: int, max_delay: float) -> float:
        failures, next_at, expires_at = self._account(key)
        if failures < free:
            return 0.0
        now = self._clock()
        if now < next_at:
            return next_at - now
        self._accounts.put(key, (failures, now + account_delay(failures, free, max_delay), expires_at))
        return 0.0

    def account_failure(self, key: str, window: float) -> None:
        failures, next_at, _ = self._account(key)
        self._accounts.put(key, (failures + 1, next_at, self._clock() + window))

    def remember(self, key: str, ttl: float) -> None:
        self._known.put(key, self._clock() + ttl)

    def known(self, key: str) -> bool:
        return self._known.get(key, 0.0) > self._clock()


@dataclass(frozen=True)
class LoginAttempt:
    """One admitted login attempt: what its outcome must update."""

    pair_key: str
    account_key: str
    known_key: str
    familiar: bool


def _key(scope: str, *parts: str) -> str:
    # Hashed: keys never hold addresses or names in clear.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"rl:{scope}:{digest}"


class RateLimiter:
    def __init__(self, guard: RedisGuard | None, settings: Settings) -> None:
        self._guard = guard
        self._settings = settings
        self._enabled = settings.rate_limit_enabled
        self._memory = MemoryWindows()
        client = guard.client if guard else None
        self._hit_script = client.register_script(_HIT) if client else None
        self._refund_script = client.register_script(_REFUND) if client else None
        self._admit_script = client.register_script(_ACCOUNT_ADMIT) if client else None
        self._failure_script = client.register_script(_ACCOUNT_FAILURE) if client else None

    async def _redis(self, operation: str, command: Callable[[Redis], Awaitable[T]]) -> T | Unavailable:
        if self._guard is None:
            return Unavailable()
        return await self._guard.call(operation, command)

    async def check(self, scope: str, identity: str, limit: int, window_seconds: int) -> None:
        """Counts one attempt; raises 429 with Retry-After past `limit`."""
        if not self._enabled:
            return
        await self._count(_key(scope, identity), limit, window_seconds)

    async def _count(self, key: str, limit: int, window_seconds: int) -> None:
        count, remaining = await self._hit(key, window_seconds)
        if count > limit:
            raise TooManyAttempts(retry_after=math.ceil(remaining))

    async def _hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        script = self._hit_script
        if script is not None:

            async def hit(redis: Redis) -> list[int]:
                result: list[int] = await script(keys=[key], args=[window_seconds * 1000], client=redis)
                return result

            result = await self._redis("ratelimit", hit)
            if not isinstance(result, Unavailable):
                count, ttl_ms = result
                return int(count), int(ttl_ms) / 1000
        return self._memory.hit(key, window_seconds)

    # -- logins ------------------------------------------------------------------

    async def admit_login(self, address: str, account: str) -> LoginAttempt | None:
        """Raises 429 when this address may not try this account now; else the
        attempt, whose outcome must be reported (None when limits are off)."""
        if not self._enabled:
            return None
        settings = self._settings
        attempt = LoginAttempt(
            pair_key=_key("login-pair", address, account),
            account_key=_key("login-account", account),
            known_key=_key("login-known", address, account),
            familiar=await self._known(_key("login-known", address, account)),
        )
        await self._count(attempt.pair_key, settings.login_rate_limit, settings.login_rate_window_seconds)
        if not attempt.familiar:
            wait = await self._account_admit(attempt.account_key)
            if wait > 0:
                await self._refund(attempt.pair_key)  # refused unheard: not a guess
                raise TooManyAttempts(retry_after=math.ceil(wait))
        return attempt

    async def login_failed(self, attempt: LoginAttempt | None) -> None:
        if attempt is None or attempt.familiar:
            return
        window = self._settings.login_account_window_seconds
        script = self._failure_script
        if script is not None:
            key = attempt.account_key

            async def record(redis: Redis) -> object:
                return await script(keys=[key], args=[window * 1000], client=redis)

            if not isinstance(await self._redis("ratelimit", record), Unavailable):
                return
        self._memory.account_failure(attempt.account_key, window)

    async def login_succeeded(self, attempt: LoginAttempt | None) -> None:
        """A right password: it does not count against the pair, and the address
        becomes familiar to the account."""
        if attempt is None:
            return
        await self._refund(attempt.pair_key)
        ttl = self._settings.login_familiar_days * 86_400
        key = attempt.known_key
        if isinstance(await self._redis("ratelimit", lambda r: r.set(key, 1, ex=ttl)), Unavailable):
            self._memory.remember(key, ttl)

    async def login_not_evaluated(self, attempt: LoginAttempt | None) -> None:
        """The attempt never reached the password check (the server was busy)."""
        if attempt is not None:
            await self._refund(attempt.pair_key)

    async def _known(self, key: str) -> bool:
        found = await self._redis("ratelimit", lambda r: r.exists(key))
        if isinstance(found, Unavailable):
            return self._memory.known(key)
        return bool(found)

    async def _refund(self, key: str) -> None:
        script = self._refund_script
        if script is not None:

            async def refund(redis: Redis) -> object:
                return await script(keys=[key], client=redis)

            if not isinstance(await self._redis("ratelimit", refund), Unavailable):
                return
        self._memory.refund(key)

    async def _account_admit(self, key: str) -> float:
        settings = self._settings
        free, max_delay = settings.login_account_free_failures, settings.login_account_max_delay_seconds
        script = self._admit_script
        if script is not None:

            async def admit(redis: Redis) -> int:
                result: int = await script(keys=[key], args=[free, int(max_delay * 1000)], client=redis)
                return result

            waited = await self._redis("ratelimit", admit)
            if not isinstance(waited, Unavailable):
                return int(waited) / 1000
        return self._memory.account_admit(key, free, max_delay)


def client_address(request: Request) -> str:
    """The caller's address; behind a proxy, uvicorn's --proxy-headers has
    already taken it from X-Forwarded-For (trusted hops only)."""
    return request.client.host if request.client else "unknown"
