"""Every exception that reaches the app is rendered here as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.platform.errors import AppError, problem_response, status_title, unavailable_response

log = logging.getLogger(__name__)


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
