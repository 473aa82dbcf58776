"""One session per request, committed before the response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from app.platform.database import TrackedSession
from app.platform.errors import AppError
from app.platform.invalidation import pending, take_pending
from app.platform.outbox import wrote_messages
from app.platform.state import Platform, PlatformDep

# Set on a session once its transaction has written (see end_read).
_WROTE = "wrote"


async def commit(session: AsyncSession, platform: Platform) -> None:
    """Commits, then does what the committed changes call for: invalidate
    the cached reads they touched, and wake the outbox relay for the e-mail
    they enqueued.

    Invalidation runs after the commit (earlier, a concurrent reader could
    cache the old row again) and before the response is sent (later, the
    client could read its own write stale).
    """
    await session.commit()
    if keys := take_pending(session.sync_session):
        await platform.cache.invalidate(*keys)
    if wrote_messages(session.sync_session):
        platform.outbox.wake()


async def end_read(session: AsyncSession) -> None:
    """Ends the session's read-only transaction, giving its connection back to
    the pool, before a slow step that needs no database (a password hash).

    A request must not hold a pooled connection while it queues for something
    else: a flood of such requests would starve every route of connections.
    The session begins a new transaction at its next statement. Objects read
    so far are expired (read their attributes before calling this). Only for
    a transaction that has written nothing: a write would be rolled back.
    """
    sync = session.sync_session
    if sync.new or sync.dirty or sync.deleted or pending(sync) or sync.info.get(_WROTE):
        raise RuntimeError("end_read() on a session that has written: it would lose the write")
    await session.rollback()


async def get_session(platform: PlatformDep) -> AsyncIterator[AsyncSession]:
    """One session per request; commits when the endpoint succeeded.

    Used with scope="function", so the commit runs after the endpoint returns
    and BEFORE the response is sent: a client never sees a 2xx for a write
    that failed to commit. Services only flush.
    """
    async with platform.sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            # Some refusals must still be recorded (a refresh-token reuse revokes
            # its family, durably) even though the request fails.
            if exc.keep_changes:
                await commit(session, platform)
            raise
        await commit(session, platform)


def read_connection(platform: Platform) -> AsyncConnection:
    """A pooled connection for reads that need no transaction (one SELECT, or
    several that need not agree), to use as `async with`: no session, no
    BEGIN / COMMIT round trips on PostgreSQL (see create_read_engine). Never
    for writes: a write must go through a session, whose commit invalidates
    the cache before the response.
    """
    return platform.read_engine.connect()


@event.listens_for(TrackedSession, "after_flush")
def _mark_flushed(session: Session, _flush: UOWTransaction) -> None:
    session.info[_WROTE] = True


@event.listens_for(TrackedSession, "do_orm_execute")
def _mark_statement(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        state.session.info[_WROTE] = True


@event.listens_for(TrackedSession, "after_transaction_end")
def _clear_mark(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
