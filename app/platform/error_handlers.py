"""Every exception that reaches the app is rendered here as RFC 9457 problem+json.

Library errors are mapped by what they mean, not by their class alone: a
database or socket error is only a 4xx or a retryable 503 when it says so
(SQLSTATE, errno). Anything else is re-raised, and the request middleware logs
it with its traceback and answers a generic 500.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.platform.errors import AppError, problem_response, status_title, unavailable_response
from app.platform.openapi import document_problems

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
# Class 22, data exception: a value the column cannot take (NUL in text, numeric
# overflow, bad encoding). asyncpg's arrive as a plain DBAPIError, not DataError.
_DATA_EXCEPTION_CLASS = "22"
# Integrity violations (class 23) by meaning. Any other one (NOT NULL, exclusion)
# means the code wrote a row it should not have: a 500.
_UNIQUE_VIOLATION = "23505"
_INVALID_REFERENCE = ("23503", "23514")  # foreign key, check
# SQLite has no SQLSTATE; its extended result codes say the same.
_SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
_SQLITE_INVALID_REFERENCE = ("SQLITE_CONSTRAINT_FOREIGNKEY", "SQLITE_CONSTRAINT_CHECK")


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _sqlite_error_name(error: sa_exc.DBAPIError) -> str | None:
    name = getattr(error.orig, "sqlite_errorname", None)
    return name if isinstance(name, str) else None


def is_database_unavailable(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    code = _sqlstate(error)
    if code is not None:
        return code.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    # Without a SQLSTATE: lost sockets (InterfaceError), SQLite "database is locked".
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))


def is_data_error(error: sa_exc.DBAPIError) -> bool:
    """The database refused a value of the request (SQLSTATE class 22)."""
    code = _sqlstate(error)
    if code is not None:
        return code.startswith(_DATA_EXCEPTION_CLASS)
    return isinstance(error, sa_exc.DataError)


def integrity_status(error: sa_exc.IntegrityError) -> int | None:
    """409 for a duplicate, 422 for a missing referent or a failed CHECK, None for the rest."""
    code = _sqlstate(error)
    sqlite_name = _sqlite_error_name(error)
    if code == _UNIQUE_VIOLATION or sqlite_name in _SQLITE_UNIQUE:
        return 409
    if code in _INVALID_REFERENCE or sqlite_name in _SQLITE_INVALID_REFERENCE:
        return 422
    return None


# Errnos of a peer that cannot be reached or went away; anything else an
# OSError says (a full disk, a permission, a missing file) is a bug or a
# misconfiguration, not something a retry elsewhere fixes.
_CONNECTIVITY_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
    }
)


def is_connectivity_error(error: OSError) -> bool:
    """A backing service is unreachable: refused, reset, unresolvable, timed out."""
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)):
        return True
    return error.errno in _CONNECTIVITY_ERRNOS


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    Starlette's own 405 names only the methods of the first route whose path
    matched, so GET /products/{id} would hide PATCH and DELETE. Each method is
    asked of the routes as a request with it would be (routers nest).
    """
    routes = request.app.router.routes
    return [
        method
        for method in _HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    document_problems(app)

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(exc.status_code, exc.detail, problem_type=exc.problem_type, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else status_title(exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        return problem_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, "The request is not valid", extra={"errors": _validation_errors(exc.errors())})

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_timeout(_: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        log.warning("database pool exhausted", extra={"error": type(exc).__name__})
        return unavailable_response("The service is busy, retry shortly")

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(_: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        status = integrity_status(exc)
        if status is None:
            raise exc
        log.info("integrity error mapped", extra={"sqlstate": _sqlstate(exc), "status": status})
        if status == 409:
            return problem_response(409, "The request conflicts with the current state of the resource")
        return problem_response(422, "The request refers to something that does not exist or breaks a rule")

    @app.exception_handler(sa_exc.DBAPIError)
    async def _dbapi(_: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        if is_database_unavailable(exc):
            log.warning(
                "database unavailable",
                extra={"error": type(exc).__name__, "sqlstate": _sqlstate(exc), "detail": str(exc.orig)},
            )
            return unavailable_response("The database is temporarily unavailable, retry shortly")
        if is_data_error(exc):
            log.info("data error mapped to 422", extra={"sqlstate": _sqlstate(exc)})
            return problem_response(422, "A value in the request cannot be stored")
        raise exc

    # Connect failures (refused, DNS, connect timeout) reach us unwrapped;
    # TimeoutError is an OSError.
    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        if not is_connectivity_error(exc):
            raise exc
        timed_out = isinstance(exc, TimeoutError)
        log.warning(
            "dependency timed out" if timed_out else "dependency unreachable",
            extra={"error": type(exc).__name__, "errno": exc.errno, "detail": str(exc)},
        )
        if timed_out:
            return unavailable_response("A backing service did not answer in time, retry shortly")
        return unavailable_response("A backing service is temporarily unavailable, retry shortly")
