"""The JSON log goes through a writer thread: what it writes must still carry
the request id of the request that logged, and a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.platform import logging as app_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        app_logging._stop_writer()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_records_are_written_off_the_caller_with_its_request_id_and_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Configured here: the handler writes to the sys.stdout capsys put in place.
    app_logging.configure_logging("INFO")
    token = app_logging.bind_request_id("req-42")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("storefront.errors").exception("unhandled error")
    finally:
        app_logging.unbind_request_id(token)
    # The writer thread formats and writes; stopping it drains the queue.
    app_logging._stop_writer()
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["request_id"] == "req-42"
    assert record["message"] == "unhandled error"
    assert "ValueError: boom" in record["exc_info"]
