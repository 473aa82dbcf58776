"""JSON structured logs that carry the request id (and, with tracing on, the
trace and span ids).

`json_formatter` and `RequestIdFilter` are also what uvicorn's own log
configuration uses (app/platform/log_config.json, `--log-config`), so its
lines are JSON from the first one, before the app has configured anything.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
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


def configure_logging(level: str, *, trace_context: bool = False) -> None:
    """Route every logger (uvicorn's included) to one JSON handler on stdout;
    `trace_context` adds the trace fields to each line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    if trace_context:
        handler.addFilter(TraceContextFilter())
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our middleware writes the access log (with the request id); uvicorn's would
    # duplicate it without one.
    logging.getLogger("uvicorn.access").disabled = True
