"""Request context: request id, access log, HTTP metrics, and the last-resort 500."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.platform.errors import problem_response, unavailable_response
from app.platform.logging import ACCESS_LOGGER, bind_request_id, unbind_request_id
from app.platform.metrics import HttpMetrics

log = logging.getLogger(ACCESS_LOGGER)
error_log = logging.getLogger("storefront.errors")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is reused only when it is sane: 1..128 visible ASCII characters.
_SANE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# Probes and scrapes would drown the access log at INFO.
QUIET_PATHS = frozenset({"/health", "/livez", "/readyz", "/metrics"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _shutting_down(scope: Scope) -> bool:
    """Whether the process is draining (the lifespan state's platform says so)."""
    platform = (scope.get("state") or {}).get("platform")
    shutdown = getattr(platform, "shutdown", None)
    return bool(getattr(shutdown, "shutting_down", False))


def _incoming_request_id(scope: Scope) -> str | None:
    value = _header(scope, b"x-request-id")
    if value is None:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _SANE_REQUEST_ID.fullmatch(text) else None


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


class RequestContextMiddleware:
    """Outermost middleware.

    Binds the request id for logs, sets X-Request-ID on every response, writes
    one access-log line and records the HTTP metrics per request, and turns
    any unhandled exception into a generic problem+json 500 (logged with its
    traceback, never sent).

    It also enforces the request body limit: a declared Content-Length over
    the limit is refused before any work, a streamed body as soon as it
    crosses it. (FastAPI's own `max_body_size` answers in text/plain, outside
    every middleware; the contract wants problem+json.)
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.too_large = f"The request body exceeds the limit of {max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 32 random hex digits, as uuid4().hex gave, without building a UUID.
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        token = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if _shutting_down(scope):
                    # Clients still on a kept-alive connection to this pod
                    # (the Service already routes new ones elsewhere) leave it
                    # after this answer, rather than race the server closing
                    # it idle at the end of the drain.
                    headers["Connection"] = "close"
            await send(message)

        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPExceptions met while reading the
                    # body; the error handlers render this one as problem+json.
                    raise HTTPException(413, self.too_large)
            return message

        try:
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await problem_response(413, self.too_large)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive_with_limit, send_with_id)
        except HTTPException as exc:
            # Only reaches here when the body was read outside a route.
            if response_started:
                raise
            await problem_response(exc.status_code, str(exc.detail))(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cancels requests still running at the end of its
            # graceful-shutdown timeout. Tell the client to retry elsewhere
            # (503) rather than leave it uvicorn's bare 500, then let the
            # cancellation proceed.
            if not response_started:
                status = 503
                await unavailable_response("The server is shutting down")(scope, receive, send_with_id)
            raise
        except Exception:
            error_log.exception("unhandled error", extra={"path": scope.get("path")})
            if response_started:
                raise
            response = problem_response(500, "An unexpected error occurred")
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.record(scope.get("route"), scope["method"], status, elapsed)
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            if log.isEnabledFor(level):  # the line's fields cost a little even when it is dropped
                log.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            unbind_request_id(token)
