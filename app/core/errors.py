"""One error hierarchy, rendered in one place as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.logging import current_request_id

log = logging.getLogger(__name__)

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


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only loc/msg/type: pydantic's "input" and "ctx" would echo the caller's data
    # (passwords included) back into responses and logs.
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in errors
    ]


# SQLSTATE classes meaning "the database cannot serve this now", not "your input is wrong":
# 08 connection exception, 53 insufficient resources (too many connections),
# 57 operator intervention (shutdown, statement timeout), 40 transaction rollback.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "40")


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_database_unavailable(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    code = _sqlstate(error)
    if code is not None:
        return code.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    # Without a SQLSTATE: lost sockets (InterfaceError), SQLite "database is locked".
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(exc.status_code, exc.detail, problem_type=exc.problem_type, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else status_title(exc.status_code)
        return problem_response(exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, "The request is not valid", extra={"errors": _validation_errors(exc.errors())})

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_timeout(_: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        log.warning("database pool exhausted", extra={"error": type(exc).__name__})
        return unavailable_response("The service is busy, retry shortly")

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(_: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        log.info("integrity error mapped to 409", extra={"sqlstate": _sqlstate(exc)})
        return problem_response(409, "The request conflicts with the current state of the resource")

    @app.exception_handler(sa_exc.DBAPIError)
    async def _dbapi(_: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        if is_database_unavailable(exc):
            log.warning("database unavailable", extra={"error": type(exc).__name__, "sqlstate": _sqlstate(exc)})
            return unavailable_response("The database is temporarily unavailable, retry shortly")
        if isinstance(exc, sa_exc.DataError):
            return problem_response(422, "A value in the request cannot be stored")
        raise exc

    # Connect failures (refused, DNS, connect timeout) reach us unwrapped;
    # TimeoutError is an OSError.
    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        timed_out = isinstance(exc, TimeoutError)
        log.warning(
            "dependency timed out" if timed_out else "dependency unreachable", extra={"error": type(exc).__name__}
        )
        if timed_out:
            return unavailable_response("A backing service did not answer in time, retry shortly")
        return unavailable_response("A backing service is temporarily unavailable, retry shortly")


def unavailable_response(detail: str, *, extra: Mapping[str, Any] | None = None) -> JSONResponse:
    """503 problem+json with Retry-After: what clients retry elsewhere or later."""
    return problem_response(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra=extra)
