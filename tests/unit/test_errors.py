from __future__ import annotations

import json

import pytest
from sqlalchemy import exc as sa_exc

from app.platform.error_handlers import _validation_errors, is_database_unavailable
from app.platform.errors import problem_response


class _Orig(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("boom")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (sa_exc.OperationalError("SELECT 1", {}, _Orig("08006")), True),  # connection failure
        (sa_exc.OperationalError("SELECT 1", {}, _Orig("57P01")), True),  # admin shutdown
        (sa_exc.DBAPIError("SELECT 1", {}, _Orig("57014")), True),  # statement timeout
        (sa_exc.OperationalError("SELECT 1", {}, _Orig("53300")), True),  # too many connections
        (sa_exc.InterfaceError("SELECT 1", {}, _Orig(None)), True),  # socket gone
        (sa_exc.IntegrityError("INSERT", {}, _Orig("23505")), False),
        (sa_exc.DataError("INSERT", {}, _Orig("22003")), False),
        (sa_exc.ProgrammingError("SELECT", {}, _Orig("42P01")), False),
    ],
)
def test_database_errors_are_classified(error: sa_exc.DBAPIError, unavailable: bool) -> None:
    assert is_database_unavailable(error) is unavailable


def test_validation_errors_never_echo_the_input() -> None:
    errors = [
        {
            "loc": ("body", "password"),
            "msg": "too long",
            "type": "string_too_long",
            "input": "hunter2",
            "ctx": {"max": 1},
        }
    ]
    assert _validation_errors(errors) == [{"loc": ["body", "password"], "msg": "too long", "type": "string_too_long"}]


def test_problem_response_shape() -> None:
    response = problem_response(409, "Already exists", headers={"X-Extra": "1"})
    assert response.media_type == "application/problem+json"
    assert json.loads(bytes(response.body)) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Already exists",
    }
    assert response.headers["x-extra"] == "1"
