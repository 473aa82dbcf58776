"""The welcome e-mail goes through the transactional outbox: written with the
user, delivered after the commit, retried with backoff, kept across restarts,
and never silently dropped at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app.platform.config import Settings
from app.platform.email import EmailMessage, HttpEmailSender
from app.platform.outbox import OutboxMessage
from app.platform.state import Platform
from tests.support.api import new_user_payload
from tests.support.app import started


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Fast retries; the relay is woken by each commit, polls besides.
    return {"email_retry_base_seconds": 0.05, "outbox_poll_seconds": 0.2, "email_timeout": 1.0}


class RecordingSender:
    """Checks, at send time, that the new user is already committed."""

    def __init__(self, platform: Platform, failures: int = 0) -> None:
        self.platform = platform
        self.failures = failures
        self.attempts = 0
        self.sent: list[EmailMessage] = []
        self.user_was_committed: list[bool] = []

    async def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        # A separate connection sees only committed rows.
        async with self.platform.engine.connect() as connection:
            found = await connection.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": message.to})
            self.user_was_committed.append(found.scalar_one() == 1)
        if self.attempts <= self.failures:
            raise ConnectionError("mail API unreachable")
        self.sent.append(message)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord], level: int) -> None:
        super().__init__(level)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def outbox_log(level: int = logging.WARNING) -> Iterator[list[logging.LogRecord]]:
    """The outbox's log records (on its own logger: the app's logging set-up
    replaces the root handlers, and with them pytest's caplog)."""
    records: list[logging.LogRecord] = []
    handler = _ListHandler(records, level)
    logger = logging.getLogger("app.platform.outbox")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"not within {within} s")


async def outbox_rows(platform: Platform) -> list[dict[str, Any]]:
    async with platform.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT recipient, attempts, sent_at, failed_at, last_error FROM email_outbox ORDER BY id")
        )
        return [dict(row._mapping) for row in rows]


async def test_welcome_email_is_sent_after_the_commit(client: httpx.AsyncClient, platform: Platform) -> None:
    sender = RecordingSender(platform)
    platform.email = sender
    payload = new_user_payload()

    response = await client.post("/users/", json=payload)

    assert response.status_code == 201
    await eventually(lambda: len(sender.sent) == 1)
    assert [m.to for m in sender.sent] == [payload["email"]]
    assert payload["username"] in sender.sent[0].text
    assert sender.user_was_committed == [True]
    [row] = await outbox_rows(platform)
    assert row["sent_at"] is not None
    assert row["attempts"] == 1


async def test_no_email_when_registration_fails(client: httpx.AsyncClient, platform: Platform) -> None:
    sender = RecordingSender(platform)
    platform.email = sender
    payload = new_user_payload()
    assert (await client.post("/users/", json=payload)).status_code == 201
    assert (await client.post("/users/", json=payload)).status_code == 409
    await eventually(lambda: len(sender.sent) == 1)
    await asyncio.sleep(0.5)  # several relay polls: nothing else goes out
    assert len(sender.sent) == 1
    assert len(await outbox_rows(platform)) == 1


async def test_a_registration_rolled_back_after_the_enqueue_leaves_no_message(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """The message row and the user share one transaction: a failure at the
    commit, after the enqueue, takes both back. (Written or committed apart,
    the message would announce an account that does not exist.)"""
    payload = new_user_payload()

    def fail_once(session: Session) -> None:
        # Only the registration's commit, once its message is enqueued (the
        # relay commits sessions of its own).
        if any(isinstance(row, OutboxMessage) for row in session.new):
            event.remove(Session, "before_commit", fail_once)
            raise RuntimeError("the commit fails")

    event.listen(Session, "before_commit", fail_once)
    with contextlib.suppress(RuntimeError):  # in-process, the 500's exception reaches the client too
        assert (await client.post("/users/", json=payload)).status_code == 500
    assert not event.contains(Session, "before_commit", fail_once)
    async with platform.engine.connect() as connection:
        users = await connection.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": payload["email"]})
        assert users.scalar_one() == 0
    assert await outbox_rows(platform) == []


async def test_http_sender_posts_the_message(client: httpx.AsyncClient, platform: Platform) -> None:
    received: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    settings = platform.settings.model_copy(
        update={"email_backend": "http", "email_api_url": "http://mail.test/send", "email_api_token": None}
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        platform.email = HttpEmailSender(http, settings)
        payload = new_user_payload()
        assert (await client.post("/users/", json=payload)).status_code == 201
        await eventually(lambda: len(received) == 1)

    body = json.loads(received[0].content)
    assert body["to"] == payload["email"]
    assert body["subject"] == "Welcome to Storefront"


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_a_failed_send_is_logged_and_retried_with_backoff(
    client: httpx.AsyncClient, platform: Platform, failure: str
) -> None:
    calls: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            if failure == "timeout":
                raise httpx.ReadTimeout("mail API too slow", request=request)
            return httpx.Response(500)
        return httpx.Response(202)

    settings = platform.settings.model_copy(update={"email_backend": "http", "email_api_url": "http://mail.test/send"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        platform.email = HttpEmailSender(http, settings)
        with outbox_log() as records:
            response = await client.post("/users/", json=new_user_payload())
            assert response.status_code == 201
            await eventually(lambda: len(calls) == 3)
            await eventually(lambda: _sent(platform))

    assert messages(records).count("e-mail delivery failed; retrying") == 2
    [row] = await outbox_rows(platform)
    assert row["attempts"] == 3
    assert row["last_error"]


async def _sent(platform: Platform) -> bool:
    return all(row["sent_at"] is not None for row in await outbox_rows(platform))


async def test_after_the_last_attempt_the_message_is_marked_failed(settings: Settings) -> None:
    async with started(settings.model_copy(update={"email_max_attempts": 2})) as app:
        platform = app.state["platform"]
        sender = RecordingSender(platform, failures=10)
        platform.email = sender
        with outbox_log(logging.ERROR) as records:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi), base_url="http://t") as http:
                assert (await http.post("/users/", json=new_user_payload())).status_code == 201
            await eventually(lambda: sender.attempts == 2)
            await eventually(lambda: "e-mail delivery failed for good" in messages(records))
        [row] = await outbox_rows(platform)
    assert row["failed_at"] is not None
    assert row["sent_at"] is None
    assert row["attempts"] == 2


async def test_a_message_survives_a_restart(settings: Settings) -> None:
    """Committed but not delivered when the process stops: the next one sends it."""
    payload = new_user_payload()
    async with started(settings) as first:
        first.state["platform"].email = RecordingSender(first.state["platform"], failures=1_000)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first.asgi), base_url="http://t") as http:
            assert (await http.post("/users/", json=payload)).status_code == 201
    async with started(settings) as second:
        platform = second.state["platform"]
        sender = RecordingSender(platform)
        platform.email = sender
        # Due again after the first process's backoff (50-100 ms here).
        await eventually(lambda: len(sender.sent) == 1)
        assert sender.sent[0].to == payload["email"]


class HangingSender:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        self.started.set()
        await asyncio.sleep(3600)


async def test_a_send_cut_short_by_shutdown_is_logged_and_sent_by_the_next_process(settings: Settings) -> None:
    hanging = HangingSender()
    with outbox_log() as records:
        async with started(settings.model_copy(update={"email_timeout": 60.0})) as first:
            first.state["platform"].email = hanging
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first.asgi), base_url="http://t") as http:
                assert (await http.post("/users/", json=new_user_payload())).status_code == 201
            await asyncio.wait_for(hanging.started.wait(), 10)
    assert any("interrupted by shutdown" in message for message in messages(records))
    async with started(settings) as second:
        sender = RecordingSender(second.state["platform"])
        second.state["platform"].email = sender
        await eventually(lambda: len(sender.sent) == 1)
