"""What each database and socket error means (findings 3 and 8); the real
PostgreSQL errors are in tests/integration/test_error_mapping.py."""

from __future__ import annotations

import errno
import socket

import pytest
from sqlalchemy import exc as sa_exc

from app.platform.error_handlers import integrity_status, is_connectivity_error, is_data_error


class _Orig(Exception):
    def __init__(self, sqlstate: str | None = None, sqlite_errorname: str | None = None) -> None:
        super().__init__("boom")
        self.sqlstate = sqlstate
        if sqlite_errorname is not None:
            self.sqlite_errorname = sqlite_errorname


@pytest.mark.parametrize(
    ("orig", "status"),
    [
        (_Orig("23505"), 409),  # unique
        (_Orig("23503"), 422),  # foreign key
        (_Orig("23514"), 422),  # check
        (_Orig("23502"), None),  # not null: a bug, 500
        (_Orig("23P01"), None),  # exclusion
        (_Orig(sqlite_errorname="SQLITE_CONSTRAINT_UNIQUE"), 409),
        (_Orig(sqlite_errorname="SQLITE_CONSTRAINT_PRIMARYKEY"), 409),
        (_Orig(sqlite_errorname="SQLITE_CONSTRAINT_FOREIGNKEY"), 422),
        (_Orig(sqlite_errorname="SQLITE_CONSTRAINT_CHECK"), 422),
        (_Orig(sqlite_errorname="SQLITE_CONSTRAINT_NOTNULL"), None),
        (_Orig(), None),
    ],
)
def test_integrity_errors_by_constraint(orig: _Orig, status: int | None) -> None:
    assert integrity_status(sa_exc.IntegrityError("INSERT", {}, orig)) == status


@pytest.mark.parametrize(
    ("error", "data"),
    [
        # asyncpg's data exceptions arrive as a plain DBAPIError: the SQLSTATE decides.
        (sa_exc.DBAPIError("SELECT", {}, _Orig("22021")), True),
        (sa_exc.DBAPIError("SELECT", {}, _Orig("22003")), True),
        (sa_exc.DBAPIError("SELECT", {}, _Orig("22P02")), True),
        (sa_exc.DataError("SELECT", {}, _Orig()), True),
        (sa_exc.DBAPIError("SELECT", {}, _Orig("42P01")), False),
        (sa_exc.ProgrammingError("SELECT", {}, _Orig("42601")), False),
    ],
)
def test_data_errors_by_sqlstate(error: sa_exc.DBAPIError, data: bool) -> None:
    assert is_data_error(error) is data


@pytest.mark.parametrize(
    ("error", "connectivity"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (BrokenPipeError(errno.EPIPE, "broken pipe"), True),
        (TimeoutError(), True),
        (socket.gaierror(socket.EAI_NONAME, "unknown host"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), True),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),
        (OSError("no errno at all"), False),
    ],
)
def test_only_connectivity_errors_are_retryable(error: OSError, connectivity: bool) -> None:
    assert is_connectivity_error(error) is connectivity
