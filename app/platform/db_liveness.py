"""Knowing when pooled PostgreSQL connections are dead, without paying a round
trip for it on every request.

SQLAlchemy's `pool_pre_ping` runs BEGIN; ";"; ROLLBACK on EVERY checkout: a
healthy, busy pool pays a round trip per request for nothing. Instead:

- **Checkout**: a connection is pinged ("SELECT 1" as one simple query, bounded by
  `DB_PING_TIMEOUT`, or by `DB_CONNECT_TIMEOUT` while other pooled connections
  get answers) only when it may be dead: idle for more than
  `DB_PING_IDLE_SECONDS`, or last used before a connection error anywhere in
  the pool (an "epoch" that every such error moves on). A healthy, recently
  used connection costs nothing extra. A failed ping terminates the
  connection and the pool opens a new one, which `DB_CONNECT_TIMEOUT` bounds:
  a blackholed database is detected within ping timeout + connect timeout.
- **Stalled statements**: a statement already sent to a database that stops
  answering would otherwise wait for the client-side command timeout
  (statement timeout + 1 s: 11 s by default). When a statement has been
  running longer than the ping timeout, a watchdog checks on a fresh
  connection (bounded by the connect timeout) whether the server answers at
  all. If it does not, every connection with a stalled statement is
  terminated (its request gets a 503) and every pooled connection becomes
  suspect. A slow query on a healthy server is left alone, and so are
  statements waiting while others get answers (behind a migration's table
  lock, say): the server is answering, and on a loaded node a probe's
  connect can time out without the server being gone.
- **Unreachable**: once the probe fails, or a new connection cannot be opened
  while no pooled connection gets an answer, the database counts as
  unreachable. Requests then get their 503 at once instead of each waiting a
  connect timeout (after a pool wait, that would exceed the bound); the
  watchdog probes every `DB_PING_TIMEOUT` and the first answer ends the
  state. No request is ever the one kept waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)


class DatabaseUnreachable(ConnectionRefusedError):
    """Refused without trying: the database did not answer the last probe.
    An OSError, so the error handlers answer 503 with Retry-After."""

    def __init__(self) -> None:
        super().__init__("the database is unreachable")


_LAST_USED = "last_used"
_EPOCH = "epoch"
WATCH_INTERVAL = 0.1


@dataclass
class LivenessPolicy:
    idle_seconds: float
    ping_timeout: float
    connect_timeout: float


@dataclass
class DatabaseLiveness:
    """Installed on one PostgreSQL engine (`install`), watched by `run()`."""

    engine: AsyncEngine
    probe_dsn: str
    probe_name: str
    policy: LivenessPolicy
    clock: Any = time.monotonic
    # Moved on by every connection error: connections last used before the
    # current epoch are pinged at their next checkout.
    epoch: int = 0
    pings: int = 0
    unreachable: bool = False
    # When PostgreSQL last answered anything on a pooled connection.
    last_answer: float = float("-inf")
    # Statements sent and not yet answered: id(DBAPI connection) -> (since, connection).
    _running: dict[int, tuple[float, Any]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _abandoned: set[asyncio.Task[bool]] = field(default_factory=set)

    # -- pool events (they run in SQLAlchemy's greenlet, on the event loop) ----

    def install(self) -> None:
        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "do_connect", self._do_connect)
        event.listen(sync_engine, "connect", self._on_connect)
        event.listen(sync_engine, "checkout", self._on_checkout)
        event.listen(sync_engine, "checkin", self._on_checkin)
        event.listen(sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(sync_engine, "after_cursor_execute", self._after_execute)
        # COMMIT, ROLLBACK and the pool's reset-on-return are round trips too,
        # and none goes through a cursor; the checkin (or the next statement)
        # clears them.
        event.listen(sync_engine, "commit", self._before_transaction_end)
        event.listen(sync_engine, "rollback", self._before_transaction_end)
        event.listen(sync_engine, "reset", self._before_reset)
        event.listen(sync_engine, "handle_error", self._on_error)

    def _mark_used(self, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = self.clock()
        record.info[_EPOCH] = self.epoch

    def _do_connect(self, dialect: Any, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        if self.unreachable:
            raise DatabaseUnreachable()
        started = self.clock()
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:  # refused, reset, timed out: not an answer from PostgreSQL
            if self._answering(since=started):
                # Pooled connections got answers while this one waited: the
                # server is up and this connect was slow (a CPU-starved node
                # forking a backend, say). Only its own request fails.
                log.warning("database connect failed while the server answers", extra={"error": type(exc).__name__})
            else:
                self._mark_unreachable("connect failed")
            raise

    def _mark_unreachable(self, why: str) -> None:
        self.epoch += 1
        if not self.unreachable:
            self.unreachable = True
            log.warning("database unreachable: refusing new connections until it answers", extra={"why": why})

    def _on_connect(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self._mark_used(record)

    def _on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # A pending COMMIT, ROLLBACK or reset came back.
        if dbapi_connection is not None and self._running.pop(id(dbapi_connection), None) is not None:
            self.last_answer = self.clock()
        self._mark_used(record)

    def _may_be_dead(self, record: ConnectionPoolEntry) -> bool:
        info = record.info
        if info.get(_EPOCH) != self.epoch:
            return True
        return bool(self.clock() - info.get(_LAST_USED, 0.0) > self.policy.idle_seconds)

    def _on_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        if not self._may_be_dead(record):
            return
        driver = dbapi_connection.driver_connection
        if self.unreachable:
            driver.terminate()  # a graceful close would wait on the dead server
            raise DisconnectionError("database unreachable")
        self.pings += 1
        try:
            await_only(self._ping(driver))
        except Exception as exc:
            # Terminate at once: a graceful close would wait on a dead server.
            driver.terminate()
            self.epoch += 1
            log.warning("database ping failed, reconnecting", extra={"error": type(exc).__name__})
            raise DisconnectionError("ping failed") from exc
        self.last_answer = self.clock()
        self._mark_used(record)

    async def _ping(self, driver: Any) -> None:
        """SELECT 1 within the ping timeout; within the connect timeout if
        other pooled connections get answers meanwhile: the server is up and
        this process or node is slow (CPU-starved under load), and replacing
        the connection would cost a connect on that same slow node. Against a
        server that answers nobody the ping still fails at the ping timeout."""
        started = self.clock()
        # Simple-query protocol: one round trip, no transaction (the pool holds none here).
        ping = asyncio.ensure_future(driver.execute("SELECT 1"))
        try:
            done, _ = await asyncio.wait({ping}, timeout=self.policy.ping_timeout)
            if not done and self._answering(since=started):
                longer = max(0.0, self.policy.connect_timeout - self.policy.ping_timeout)
                done, _ = await asyncio.wait({ping}, timeout=longer)
            if not done:
                raise TimeoutError("ping not answered")
            ping.result()
        finally:
            ping.cancel()  # no-op once done

    def _before_execute(self, connection: Connection, *_: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None:
            self._running[id(dbapi_connection)] = (self.clock(), dbapi_connection)

    def _before_transaction_end(self, connection: Connection) -> None:
        # An invalidated connection sends nothing (and refuses to be looked at).
        if not connection.invalidated and not connection.closed:
            self._before_execute(connection)

    def _before_reset(self, dbapi_connection: Any, _record: ConnectionPoolEntry, _state: Any) -> None:
        if dbapi_connection is not None:
            self._running[id(dbapi_connection)] = (self.clock(), dbapi_connection)

    def _after_execute(self, connection: Connection, *_: Any) -> None:
        self.last_answer = self.clock()
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None:
            self._running.pop(id(dbapi_connection), None)

    def _on_error(self, context: ExceptionContext) -> None:
        connection = context.connection
        if connection is not None and not connection.invalidated:
            dbapi_connection = connection.connection.dbapi_connection
            if dbapi_connection is not None:
                self._running.pop(id(dbapi_connection), None)
        if context.is_disconnect or isinstance(context.original_exception, OSError):
            self.epoch += 1

    # -- the watchdog ----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="database-liveness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _stalled(self, now: float) -> list[Any]:
        limit = self.policy.ping_timeout
        return [connection for since, connection in self._running.values() if now - since > limit]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await self._watch_once()
            except Exception:  # the watchdog must outlive any surprise
                log.exception("database liveness check failed")

    async def _watch_once(self) -> None:
        if self.unreachable:
            # Known not to answer (a probe or a connect failed, maybe for
            # another request): statements still waiting on it will not
            # return either.
            self._end(self._stalled(self.clock()))
            if await self.server_answers():
                self.unreachable = False
                log.warning("database answers again")
            else:
                await asyncio.sleep(self.policy.ping_timeout)
            return
        now = self.clock()
        if not self._stalled(now):
            return
        if self._answering(since=now - self.policy.ping_timeout) or await self.server_answers():
            # Slow statements on a live server: leave them to their own timeouts,
            # and look again only after a while.
            await asyncio.sleep(self.policy.ping_timeout)
            return
        if self._answering(since=now):  # others got answers while the probe waited
            return
        self._mark_unreachable("probe failed")
        self._end(self._stalled(now))

    def _answering(self, since: float) -> bool:
        """Whether PostgreSQL answered a pooled connection at or after `since`."""
        return self.last_answer >= since

    def _end(self, stalled: list[Any]) -> None:
        """Terminates the connections of stalled statements: their requests get a 503."""
        if not stalled:
            return
        log.warning("database does not answer: ending stalled statements", extra={"stalled": len(stalled)})
        for connection in stalled:
            self._running.pop(id(connection), None)
            with contextlib.suppress(Exception):
                connection.driver_connection.terminate()

    async def server_answers(self) -> bool:
        """A fresh connection and a SELECT 1, within the connect timeout.

        The probe runs as a task of its own that is abandoned, not awaited,
        when time is up: closing a connection to a dead server can itself hang.
        """
        probe = asyncio.create_task(self._probe(), name="database-probe")
        done, _ = await asyncio.wait({probe}, timeout=self.policy.connect_timeout)
        if probe in done:
            return probe.result()
        log.info("database probe timed out")
        probe.cancel()
        self._abandoned.add(probe)
        probe.add_done_callback(self._abandoned.discard)
        return False

    async def _probe(self) -> bool:
        # asyncpg itself, not an engine: a first connect through SQLAlchemy runs
        # several set-up queries, each a round trip a slow network would count.
        try:
            connection = await asyncpg.connect(
                self.probe_dsn,
                timeout=self.policy.connect_timeout,
                server_settings={"application_name": self.probe_name},
            )
        except asyncpg.CannotConnectNowError:  # starting up or shutting down: serves nothing yet
            return False
        except asyncpg.PostgresError as exc:
            # Too many clients, or a rejected login: PostgreSQL itself answered.
            # Its statements are alive (waiting on a lock, say, behind a
            # migration while old and new pods overlap): not a reason to end them.
            log.info("database probe refused, but the server answers", extra={"error": type(exc).__name__})
            return True
        except Exception as exc:  # refused, timed out, reset: no answer from PostgreSQL
            log.info("database probe failed", extra={"error": type(exc).__name__, "detail": str(exc)[:200]})
            return False
        try:
            await connection.execute("SELECT 1")
        except Exception:
            return False
        finally:
            connection.terminate()
        return True
