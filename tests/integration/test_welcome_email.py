"""The welcome e-mail: queued after the commit, failures logged, never raised."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from sqlalchemy import text

from app.platform.email import EmailMessage, HttpEmailSender
from app.platform.state import Platform
from tests.support.api import new_user_payload


class RecordingSender:
    """Checks, at send time, that the new user is already committed."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.sent: list[EmailMessage] = []
        self.user_was_committed: list[bool] = []

    async def send(self, message: EmailMessage) -> None:
        # A separate connection sees only committed rows.
        async with self.platform.engine.connect() as connection:
            found = await connection.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": message.to})
            self.user_was_committed.append(found.scalar_one() == 1)
        self.sent.append(message)


async def test_welcome_email_is_sent_after_the_commit(client: httpx.AsyncClient, platform: Platform) -> None:
    sender = RecordingSender(platform)
    platform.email = sender
    payload = new_user_payload()

    response = await client.post("/users/", json=payload)

    assert response.status_code == 201
    assert [m.to for m in sender.sent] == [payload["email"]]
    assert payload["username"] in sender.sent[0].text
    assert sender.user_was_committed == [True]


async def test_no_email_when_registration_fails(client: httpx.AsyncClient, platform: Platform) -> None:
    sender = RecordingSender(platform)
    platform.email = sender
    payload = new_user_payload()
    assert (await client.post("/users/", json=payload)).status_code == 201
    assert (await client.post("/users/", json=payload)).status_code == 409
    assert len(sender.sent) == 1


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

    assert len(received) == 1
    body = json.loads(received[0].content)
    assert body["to"] == payload["email"]
    assert body["subject"] == "Welcome to Storefront"


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_email_failure_is_logged_not_raised(
    client: httpx.AsyncClient, platform: Platform, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("mail API too slow", request=request)
        return httpx.Response(500)

    settings = platform.settings.model_copy(update={"email_backend": "http", "email_api_url": "http://mail.test/send"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        platform.email = HttpEmailSender(http, settings)
        with caplog.at_level(logging.WARNING, logger="app.platform.email"):
            response = await client.post("/users/", json=new_user_payload())

    assert response.status_code == 201
    assert any(record.getMessage() == "email delivery failed" for record in caplog.records)
