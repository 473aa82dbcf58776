"""Outgoing e-mail: a log-only default and an HTTP API sender."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

from app.platform.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class LogEmailSender:
    """Development default: records that an e-mail would have been sent."""

    async def send(self, message: EmailMessage) -> None:
        log.info("email (log backend)", extra={"to": message.to, "subject": message.subject})


class HttpEmailSender:
    """Posts the message as JSON to a transactional e-mail HTTP API."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        if settings.email_api_url is None:
            raise ValueError("the HTTP e-mail backend needs EMAIL_API_URL")
        self._client = client
        self._url = settings.email_api_url
        self._from = settings.email_from
        self._timeout = settings.email_timeout
        self._headers = {}
        if settings.email_api_token is not None:
            self._headers["Authorization"] = f"Bearer {settings.email_api_token.get_secret_value()}"

    async def send(self, message: EmailMessage) -> None:
        response = await self._client.post(
            self._url,
            json={"from": self._from, "to": message.to, "subject": message.subject, "text": message.text},
            headers=self._headers,
            timeout=self._timeout,
        )
        response.raise_for_status()


def create_email_sender(settings: Settings, client: httpx.AsyncClient) -> EmailSender:
    if settings.email_backend == "http":
        return HttpEmailSender(client, settings)
    return LogEmailSender()
