"""The rules of app/platform/db_liveness.py that tell a slow node from a
database that does not answer: a failed connect, a late ping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from app.platform.db_liveness import DatabaseLiveness, LivenessPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TimingOutDialect:
    """A connect that waits 3 s and times out; `meanwhile` runs as it waits."""

    def __init__(self, clock: Clock, meanwhile: Any = None) -> None:
        self.clock = clock
        self.meanwhile = meanwhile

    def connect(self, *_: Any, **__: Any) -> Any:
        self.clock.now += 1.5
        if self.meanwhile is not None:
            self.meanwhile()
        self.clock.now += 1.5
        raise TimeoutError("connect timed out")


@pytest.fixture
def engine() -> Iterator[AsyncEngine]:
    # Never connected: only the object the liveness is attached to.
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    yield engine
    engine.sync_engine.dispose()


def liveness_on(engine: AsyncEngine, clock: Clock) -> DatabaseLiveness:
    policy = LivenessPolicy(idle_seconds=5, ping_timeout=0.5, connect_timeout=3)
    return DatabaseLiveness(engine=engine, probe_dsn="", probe_name="probe", policy=policy, clock=clock)


def test_a_connect_that_fails_while_nothing_answers_makes_the_database_unreachable(engine: AsyncEngine) -> None:
    clock = Clock()
    liveness = liveness_on(engine, clock)
    liveness.last_answer = clock.now - 10
    with pytest.raises(TimeoutError):
        liveness._do_connect(TimingOutDialect(clock), None, (), {})  # type: ignore[arg-type]
    assert liveness.unreachable
    assert liveness.epoch == 1  # every pooled connection is suspect


def test_a_slow_connect_while_pooled_connections_get_answers_fails_alone(engine: AsyncEngine) -> None:
    """On a CPU-starved node a connect can outlast its timeout while the
    server answers every pooled connection: only that request fails, and the
    next ones are not refused."""
    clock = Clock()
    liveness = liveness_on(engine, clock)

    def pooled_connection_answered() -> None:
        liveness.last_answer = clock.now

    with pytest.raises(TimeoutError):
        liveness._do_connect(TimingOutDialect(clock, pooled_connection_answered), None, (), {})  # type: ignore[arg-type]
    assert not liveness.unreachable
    assert liveness.epoch == 0  # pooled connections are not pinged for it


class SlowDriver:
    """An asyncpg connection whose SELECT 1 takes `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.terminated = False

    async def execute(self, _query: str) -> str:
        await asyncio.sleep(self.seconds)
        return "SELECT 1"

    def terminate(self) -> None:
        self.terminated = True


class PooledConnection:
    def __init__(self, driver: SlowDriver) -> None:
        self.driver_connection = driver


class IdleRecord:
    """A pool entry last used long ago: its next checkout pings it."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {"last_used": 0.0, "epoch": 0}


async def check_out_while(liveness: DatabaseLiveness, driver: SlowDriver, others: Any) -> None:
    """A checkout of an idle connection while `others` runs beside it."""
    beside = asyncio.create_task(others())
    try:
        await greenlet_spawn(liveness._on_checkout, PooledConnection(driver), IdleRecord(), None)
    finally:
        beside.cancel()


def realtime_liveness(engine: AsyncEngine) -> DatabaseLiveness:
    policy = LivenessPolicy(idle_seconds=5, ping_timeout=0.2, connect_timeout=1.5)
    return DatabaseLiveness(engine=engine, probe_dsn="", probe_name="probe", policy=policy)


async def test_a_slow_ping_while_other_connections_get_answers_keeps_the_connection(engine: AsyncEngine) -> None:
    """A CPU-starved pod answers its ping late while the server answers its
    other connections: replacing the connection would cost a connect on that
    same slow node, so the ping is given the connect timeout."""
    liveness = realtime_liveness(engine)
    driver = SlowDriver(seconds=0.6)  # past the ping timeout, within the connect timeout

    async def other_connections_get_answers() -> None:
        while True:
            liveness.last_answer = time.monotonic()
            await asyncio.sleep(0.05)

    await check_out_while(liveness, driver, other_connections_get_answers)
    assert not driver.terminated


async def test_a_slow_ping_while_nothing_answers_replaces_the_connection(engine: AsyncEngine) -> None:
    liveness = realtime_liveness(engine)
    driver = SlowDriver(seconds=0.6)

    async def nothing_answers() -> None:
        await asyncio.sleep(10)

    with pytest.raises(DisconnectionError):
        await check_out_while(liveness, driver, nothing_answers)
    assert driver.terminated
    assert liveness.epoch == 1
