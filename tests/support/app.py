"""Running the app in-process as a server would: the ASGI lifespan protocol,
and its state handed to every request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.main import AppState, create_app
from app.platform.config import Settings

LIFESPAN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Started:
    asgi: ASGIApp  # the app, with the lifespan state in every request's scope
    state: AppState


@asynccontextmanager
async def started(settings: Settings, *, tracer_provider: TracerProvider | None = None) -> AsyncIterator[Started]:
    """Starts `create_app(settings)` through the lifespan protocol, as uvicorn
    does, and stops it on exit. `tracer_provider` turns tracing on."""
    app: FastAPI = create_app(settings, tracer_provider=tracer_provider)
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    lifespan = asyncio.create_task(app({"type": "lifespan", "state": state, "asgi": {"version": "3.0"}}, receive, send))

    async def step(kind: str) -> None:
        await inbox.put({"type": f"lifespan.{kind}"})
        message = await asyncio.wait_for(outbox.get(), LIFESPAN_TIMEOUT)
        if message["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"lifespan {kind} failed: {message.get('message', message['type'])}")

    await step("startup")
    try:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # Servers give each request a shallow copy of the lifespan state.
            await app({**scope, "state": dict(state)}, receive, send)

        yield Started(asgi=with_state, state=cast(AppState, state))
    finally:
        await step("shutdown")
        await asyncio.wait_for(lifespan, LIFESPAN_TIMEOUT)
