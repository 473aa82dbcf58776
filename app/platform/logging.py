"""JSON structured logs that carry the request id."""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str | None) -> Any:
    """Set the request id for the current context; returns a token for reset."""
    return _request_id.set(request_id)


def unbind_request_id(token: Any) -> None:
    _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class _InProcessQueueHandler(QueueHandler):
    """Hands records to the writer thread as they are.

    The stock `prepare` formats the message on the caller's side and drops
    `exc_info` (made for queues that pickle): here the record stays in the
    process, so the JSON formatter sees it whole, traceback included, on the
    writer thread.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_writer: QueueListener | None = None


def _stop_writer() -> None:
    """Writes what is queued, then stops the writer thread (at exit, or when
    logging is configured again)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def configure_logging(level: str) -> None:
    """Route every logger (uvicorn's included) to one JSON handler on stdout.

    The event loop only queues records: formatting the JSON and writing it
    happen on a writer thread (QueueListener), so a request does not pay them
    (an access-log line a request cost 4-9% of its CPU, bench/README.md).
    Filters that read the request's context (its id, from a ContextVar) run
    on the queueing side, where that context is current; the writer thread
    has none.
    """
    global _writer
    _stop_writer()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            ["levelname", "name", "message", "request_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601 in UTC
        )
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    front = _InProcessQueueHandler(records)
    front.addFilter(_RequestIdFilter())
    _writer = QueueListener(records, handler)
    _writer.start()
    root = logging.getLogger()
    root.handlers[:] = [front]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our middleware writes the access log (with the request id); uvicorn's would
    # duplicate it without one.
    logging.getLogger("uvicorn.access").disabled = True
