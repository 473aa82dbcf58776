"""One session per request, committed before the response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.platform.errors import AppError
from app.platform.invalidation import take_pending
from app.platform.outbox import wrote_messages
from app.platform.state import Platform, PlatformDep


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


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
