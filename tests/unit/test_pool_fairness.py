"""The pool hands connections out first come, first served
(app/platform/pool.py FairQueue): a request that has waited is never passed
by one that just arrived, and a connection is never lost to a waiter that
gave up."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from app.platform.config import Settings
from app.platform.database import create_engine
from app.platform.pool import FairQueue


class Line:
    """Requests queueing for the pool's connections, in the greenlet
    context SQLAlchemy's pool runs in."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        self.served: list[tuple[str, str]] = []

    def request(self, name: str, timeout: float = 5.0) -> asyncio.Task[None]:
        async def take() -> None:
            connection = await greenlet_spawn(self.queue.get, True, timeout)
            self.served.append((name, connection))

        return asyncio.create_task(take(), name=name)


async def test_a_returned_connection_goes_to_the_request_that_waited() -> None:
    line = Line(FairQueue(1, use_lifo=True))
    waiting = line.request("waiting")
    await asyncio.sleep(0.01)  # in line, the pool empty
    # A newcomer whose turn on the event loop comes before the waiter's
    # wake-up: with asyncio.Queue it takes the connection and the waiter
    # goes to the back of the line.
    newcomer = line.request("newcomer")
    line.queue.put_nowait("connection")
    await asyncio.sleep(0.01)
    assert line.served == [("waiting", "connection")]
    assert not newcomer.done()
    line.queue.put_nowait("connection")  # the waiter's request is done
    await asyncio.gather(waiting, newcomer)
    assert [name for name, _ in line.served] == ["waiting", "newcomer"]


async def test_waiters_are_served_in_the_order_they_came() -> None:
    line = Line(FairQueue(3))
    tasks = []
    for name in ("a", "b", "c", "d", "e"):
        tasks.append(line.request(name))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    for late in range(5):
        # Each returned connection races a new arrival, as under saturation.
        tasks.append(line.request(f"late-{late}"))
        line.queue.put_nowait("connection")
        await asyncio.sleep(0.01)
    assert [name for name, _ in line.served] == ["a", "b", "c", "d", "e"]
    for task in tasks[5:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_waiter_times_out_with_empty_and_leaves_the_line() -> None:
    queue = FairQueue(1)
    with pytest.raises(Empty):
        await greenlet_spawn(queue.get, True, 0.05)
    queue.put_nowait("connection")  # nobody waits any more: it stays in the pool
    assert not queue.empty()
    assert await greenlet_spawn(queue.get, True, 0.05) == "connection"


async def test_a_connection_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    line = Line(FairQueue(1))
    first = line.request("first")
    await asyncio.sleep(0.01)
    second = line.request("second")
    await asyncio.sleep(0.01)
    line.queue.put_nowait("connection")  # handed to the first waiter...
    first.cancel()  # ...whose client goes away before it runs
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert line.served == [("second", "connection")]


async def test_the_engines_pool_is_fair() -> None:
    engine = create_engine(Settings(database_url="postgresql+asyncpg://u:p@127.0.0.1:1/db"))
    try:
        assert isinstance(engine.pool._pool, FairQueue)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_a_waiter_of_a_closed_event_loop_is_skipped() -> None:
    queue = FairQueue(1)
    other_loop = asyncio.new_event_loop()
    stranded = other_loop.create_future()
    other_loop.close()
    queue._waiters.append(stranded)  # its request's loop went away while it waited
    queue.put_nowait("connection")
    assert not stranded.done()
    assert await greenlet_spawn(queue.get, True, 0.05) == "connection"
