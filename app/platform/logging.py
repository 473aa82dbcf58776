"""JSON structured logs that carry the request id (and, with tracing on, the
trace and span ids).

`json_formatter` and `RequestIdFilter` are also what uvicorn's own log
configuration uses (app/platform/log_config.json, `--log-config`), so its
lines are JSON from the first one, before the app has configured anything.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str | None) -> Any:
    """Set the request id for the current context; returns a token for reset."""
    return _request_id.set(request_id)


def unbind_request_id(token: Any) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (hex, as trace backends show them) to a
    line written inside a span, and `trace_sampled`: whether that trace is
    recorded. The request id is what a client sees; the trace id joins the
    line to its trace. Installed only when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
            record.trace_sampled = context.trace_flags.sampled
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        ["levelname", "name", "message", "request_id"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC
        # uvicorn repeats some messages with terminal colour codes.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


# The one logger written on every request: the only one worth not waiting for.
ACCESS_LOGGER = "storefront.access"
# A writer that does not answer must not hold up the caller for long.
WRITE_WAIT_SECONDS = 1.0


class _Written:
    """Queued after a record the caller waits for; set once the writer reaches it."""

    def __init__(self) -> None:
        self.done = threading.Event()


def _wait_until_written(records: Any) -> None:
    """Returns once the writer has written everything queued so far."""
    written = _Written()
    records.put_nowait(written)
    written.done.wait(WRITE_WAIT_SECONDS)


class _InProcessQueueHandler(QueueHandler):
    """Hands records to the writer thread as they are.

    The stock `prepare` formats the message on the caller's side and drops
    `exc_info` (made for queues that pickle): here the record stays in the
    process, so the JSON formatter sees it whole, traceback included, on the
    writer thread.

    Access-log lines are queued and left: they are the hot path. Every other
    line (startup, warnings, errors, uvicorn's shutdown) waits until it is
    written, and with it everything queued before it. A process can end
    without running atexit: uvicorn re-raises SIGTERM after its last line
    ("Finished server process"), whose default action ends the process at
    once; a line still in the queue then would be lost.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.name != ACCESS_LOGGER:
            _wait_until_written(self.queue)


class _Writer(QueueListener):
    def handle(self, record: Any) -> None:
        if isinstance(record, _Written):
            record.done.set()
        else:
            super().handle(record)


_writer: _Writer | None = None


def _stop_writer() -> None:
    """Writes what is queued, then stops the writer thread (at exit, or when
    logging is configured again)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def flush_logs() -> None:
    """Returns once every record queued so far is written (for tests that
    read what was logged)."""
    if _writer is not None:
        _wait_until_written(_writer.queue)


def log_writer() -> logging.StreamHandler[Any]:
    """The handler that formats and writes the JSON lines, on the writer thread."""
    if _writer is None:
        raise RuntimeError("logging is not configured")
    handler = _writer.handlers[0]
    if not isinstance(handler, logging.StreamHandler):
        raise TypeError("the log writer is not a stream handler")
    return handler


def configure_logging(level: str, *, trace_context: bool = False) -> None:
    """Route every logger (uvicorn's included) to one JSON handler on stdout;
    `trace_context` adds the trace fields to each line.

    The event loop only queues records: formatting the JSON and writing it
    happen on a writer thread (QueueListener), so a request does not pay them
    (an access-log line cost 4-9% of a request's CPU, bench/README.md).
    Filters that read the request's context (its id, the current span) run
    on the queueing side, where that context is current; the writer thread
    has none.
    """
    global _writer
    _stop_writer()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    front = _InProcessQueueHandler(records)
    front.addFilter(RequestIdFilter())
    if trace_context:
        front.addFilter(TraceContextFilter())
    _writer = _Writer(records, handler)
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
