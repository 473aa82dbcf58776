"""The e-mail outbox: a message is a row written in the transaction of the
change it announces, and a relay delivers it afterwards.

- Nothing is sent for a change that rolled back, and nothing committed is lost
  to a crash or a restart: the row waits in the table until it is delivered.
- Delivery is AT LEAST ONCE. The relay claims due rows for a lease (so
  replicas never send the same row at the same time), sends each outside any
  transaction, then marks it sent. A process that dies between the send and
  the mark sends that message again once the lease runs out.
- A failed send is retried with exponential backoff and jitter, up to
  EMAIL_MAX_ATTEMPTS; then the row is marked failed and logged as an error.
- The relay is woken at once by the commit that wrote a message, and also
  polls every OUTBOX_POLL_SECONDS for rows of other replicas or earlier runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Index, String, Text, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.platform.config import Settings
from app.platform.database import Base, UTCDateTime, utcnow
from app.platform.email import EmailMessage, EmailSender

log = logging.getLogger(__name__)

BATCH = 20
BACKOFF_CAP_SECONDS = 900.0
# How long shutdown waits for a send in progress before cutting it short (it
# is then due again at once, for the next process).
STOP_GRACE_SECONDS = 2.0
_WRITTEN = "outbox_written"


class OutboxMessage(Base):
    __tablename__ = "email_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Due time: the next attempt, or the end of the lease of a claimed row.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# What the relay scans: undelivered rows by due time.
Index(
    "ix_email_outbox_due",
    OutboxMessage.next_attempt_at,
    postgresql_where=OutboxMessage.sent_at.is_(None) & OutboxMessage.failed_at.is_(None),
    sqlite_where=OutboxMessage.sent_at.is_(None) & OutboxMessage.failed_at.is_(None),
)


def enqueue(session: AsyncSession, message: EmailMessage) -> None:
    """Writes `message` into the caller's transaction; the relay sends it
    once that transaction has committed."""
    session.add(OutboxMessage(recipient=message.to, subject=message.subject, body=message.text))
    session.sync_session.info[_WRITTEN] = True


def wrote_messages(session: Session) -> bool:
    """Did this transaction enqueue e-mail? (Read and reset by the commit.)"""
    return bool(session.info.pop(_WRITTEN, False))


def backoff(attempts: int, base: float) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 base, 4 base ... up to 15 minutes, +-20 %."""
    delay: float = min(BACKOFF_CAP_SECONDS, base * 2.0 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not security)


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "email_outbox_deliveries_total",
            "Outbox delivery attempts by result (sent, retry, failed)",
            ["result"],
            registry=registry,
        )


class OutboxRelay:
    """Sends due outbox rows, one process-wide task."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: Callable[[], EmailSender],
        settings: Settings,
        metrics: OutboxMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sender = sender
        self._poll = settings.outbox_poll_seconds
        self._timeout = settings.email_timeout
        self._max_attempts = settings.email_max_attempts
        self._retry_base = settings.email_retry_base_seconds
        # A claimed row is left alone this long; longer than any one send.
        self._lease = timedelta(seconds=max(60.0, 4 * settings.email_timeout))
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._sending: OutboxMessage | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="email-outbox-relay")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Lets a send in progress finish for STOP_GRACE_SECONDS; one cut short
        is logged, and is due again at once for the next process."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS)
        except TimeoutError:
            interrupted = self._sending
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if interrupted is not None:
                # Due again now rather than when its lease runs out.
                with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
                    await asyncio.wait_for(self._mark(interrupted.id, next_attempt_at=utcnow()), 2)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                while not self._stopping and await self.deliver_due():
                    pass
            except (SQLAlchemyError, OSError) as exc:
                log.warning("outbox relay could not read the outbox", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Claims and sends one batch of due messages; returns how many."""
        claimed = await self._claim()
        for message in claimed:
            if self._stopping and message is not claimed[0]:
                # Shutting down: the rest keep their lease and go out later.
                log.info("outbox relay stopping; messages left for the next run", extra={"id": message.id})
                break
            await self._deliver(message)
        return len(claimed)

    async def _claim(self) -> list[OutboxMessage]:
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            due = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            ids = list((await session.execute(due)).scalars())
            if not ids:
                return []
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(next_attempt_at=now + self._lease, attempts=OutboxMessage.attempts + 1)
                .returning(OutboxMessage)
                .execution_options(synchronize_session=False)
            )
            return sorted(result.scalars(), key=lambda m: m.id)

    async def _deliver(self, message: OutboxMessage) -> None:
        email = EmailMessage(to=message.recipient, subject=message.subject, text=message.body)
        self._sending = message
        try:
            async with asyncio.timeout(self._timeout):
                await self._sender().send(email)
        except asyncio.CancelledError:
            log.warning(
                "e-mail delivery interrupted by shutdown; it stays in the outbox and will be sent again",
                extra={"id": message.id, "subject": message.subject},
            )
            raise
        except Exception as exc:
            self._sending = None
            await self._failed(message, exc)
            return
        self._sending = None
        await self._mark(message.id, sent_at=utcnow())
        self._metrics.deliveries.labels("sent").inc()

    async def _failed(self, message: OutboxMessage, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:200]
        if message.attempts >= self._max_attempts:
            log.error(
                "e-mail delivery failed for good",
                extra={"id": message.id, "subject": message.subject, "attempts": message.attempts, "error": error},
            )
            await self._mark(message.id, failed_at=utcnow(), last_error=error)
            self._metrics.deliveries.labels("failed").inc()
            return
        delay = backoff(message.attempts, self._retry_base)
        log.warning(
            "e-mail delivery failed; retrying",
            extra={"id": message.id, "attempts": message.attempts, "retry_in_s": round(delay, 1), "error": error},
        )
        await self._mark(message.id, next_attempt_at=utcnow() + timedelta(seconds=delay), last_error=error)
        self._metrics.deliveries.labels("retry").inc()

    async def _mark(self, message_id: int, **values: object) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))
