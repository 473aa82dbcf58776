"""The error hierarchy every layer raises; error_handlers.py renders it as RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi.responses import JSONResponse

from app.platform.logging import current_request_id

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 1


# RFC 9110 renamed these; Python < 3.13 still uses the old phrases, and a
# client should not see titles change with the server's Python version.
_RFC9110_TITLES = {413: "Content Too Large", 416: "Range Not Satisfiable", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    return _RFC9110_TITLES.get(status) or HTTPStatus(status).phrase


class AppError(Exception):
    """An expected failure with a status code and a client-safe message."""

    status_code: ClassVar[int] = 500
    problem_type: ClassVar[str] = "about:blank"
    # When True, the request's database changes are committed although the
    # request fails (see get_session).
    keep_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.detail = detail or status_title(self.status_code)
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status_code = 503

    def __init__(
        self, detail: str = "Service temporarily unavailable", *, retry_after: int = RETRY_AFTER_SECONDS
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    status: int,
    detail: str,
    *,
    problem_type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type,
        "title": status_title(status),
        "status": status,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def unavailable_response(detail: str, *, extra: Mapping[str, Any] | None = None) -> JSONResponse:
    """503 problem+json with Retry-After: what clients retry elsewhere or later."""
    return problem_response(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra=extra)
