"""OpenTelemetry tracing: off unless an OTLP endpoint is configured.

Configured by the standard variables, read by the OpenTelemetry SDK itself:
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it
on; OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG choose the sampler (e.g.
parentbased_traceidratio and 0.1), OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES describe the process, OTEL_EXPORTER_OTLP_HEADERS,
_TIMEOUT, _COMPRESSION and OTEL_BSP_* tune the export (OTLP over HTTP with
protobuf). OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.

Off, nothing is installed: no span is started, no library is wrapped, and
the log lines carry no trace fields. On, the spans are:

- the request: FastAPI's own server span (FastAPI(telemetry=...)), named
  after the route, with the request id (`request_id`) the client sees in
  X-Request-ID and the exception of an unhandled error;
- each database statement (opentelemetry-instrumentation-sqlalchemy, on the
  app's engine only);
- each Redis command (opentelemetry-instrumentation-redis, on the command
  client only: the invalidation listener's one-second polls stay untraced);
- each cached read (`cache <name>`, below), whose miss holds the statements
  that computed it;
- each e-mail the outbox relay sends, as a trace of its own: `email send`
  and the HTTP call under it (opentelemetry-instrumentation-httpx), which
  records no body.

Probes and scrapes (/health, /livez, /readyz, /metrics) and the relay's own
polling are left out: they would drown the traces that matter.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final

import httpx
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from app.platform.cache import Cache, Cached
from app.platform.email import EmailMessage, EmailSender
from app.platform.errors import AppError
from app.platform.logging import current_request_id
from app.platform.middleware import QUIET_PATHS

TRACER_NAME = "storefront"
SERVICE_NAME = "storefront"
# How long shutdown waits for the last spans to reach the collector; a dead
# collector must not hold up a pod's termination.
FLUSH_SECONDS = 3.0
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_PROTOCOL = "http/protobuf"
# The instrumentations record OpenTelemetry metrics too; Prometheus has ours.
_NO_METRICS: Final = NoOpMeterProvider()


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def enabled_by(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces: an endpoint is set and
    neither the SDK nor the trace exporter is switched off."""
    if _env(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return False
    if _env(environ, "OTEL_TRACES_EXPORTER").lower() == "none":
        return False
    return any(_env(environ, name) for name in _ENDPOINT_VARIABLES)


def provider_from_environment(
    service_version: str, environ: Mapping[str, str] = os.environ
) -> SdkTracerProvider | None:
    """A tracer provider exporting over OTLP/HTTP as the OTEL_* variables say,
    or None when they do not ask for traces.

    The exporter, the batch processor and the sampler read their variables
    themselves (the SDK's defaults: a parent-based, always-on sampler)."""
    if not enabled_by(environ):
        return None
    exporter = _env(environ, "OTEL_TRACES_EXPORTER").lower() or "otlp"
    if exporter != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r}: only 'otlp' (or 'none') is supported")
    for name in _PROTOCOL_VARIABLES:
        if (protocol := _env(environ, name)) and protocol != _PROTOCOL:
            raise ValueError(f"{name}={protocol!r}: only {_PROTOCOL!r} is supported")
    # Our name and version unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise.
    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": service_version}).merge(
        OTELResourceDetector().detect()
    )
    provider = SdkTracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@dataclass(frozen=True)
class Tracing:
    """Tracing switched on: the provider every span of this app goes to."""

    provider: trace.TracerProvider
    # Built here from the environment (so flushed and shut down with the app),
    # or handed in by the caller, who keeps it (tests: an in-memory exporter).
    owned: bool

    @property
    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer(TRACER_NAME)

    def fastapi_telemetry(self) -> TelemetryConfig:
        """FastAPI's own request spans, to this provider; its metrics and log
        events stay off (Prometheus and the JSON logs cover them)."""
        return TelemetryConfig(
            tracer_provider=self.provider,
            tracing=True,
            metrics=False,
            logs=False,
            # Spans for each dependency, the endpoint and serialization: more
            # spans per request than the request has statements. Left out.
            operation_spans=False,
            auto_configure=False,
            exclude=_is_quiet,
        )

    def instrument_engine(self, engine: AsyncEngine) -> None:
        # EngineTracer listens to this engine's events only. (The instrumentor's
        # instrument() would also patch create_engine and Engine.connect for the
        # whole process, and refuses SQLAlchemy 2.1 by its declared range.)
        EngineTracer(  # type: ignore[no-untyped-call]  # the package ships no types
            self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
            engine.sync_engine,
            _NO_METRICS.get_meter("sqlalchemy").create_up_down_counter("db.client.connections.usage"),
        )

    def instrument_redis(self, client: Redis) -> None:
        # Commands are recorded with their arguments masked ("SET ? ? ..."):
        # no cached value reaches a span.
        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def instrument_http(self, client: httpx.AsyncClient) -> None:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider, meter_provider=_NO_METRICS)

    async def shutdown(self) -> None:
        """Exports what is left (at most FLUSH_SECONDS) if this app owns the provider."""
        if not self.owned or not isinstance(self.provider, SdkTracerProvider):
            return
        # In a daemon thread, so that an unreachable collector delays neither
        # this coroutine nor the interpreter's exit.
        flushing = threading.Thread(target=self.provider.shutdown, name="trace-flush", daemon=True)
        flushing.start()
        await asyncio.to_thread(flushing.join, FLUSH_SECONDS)


def _is_quiet(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in QUIET_PATHS


def untraced(tracing: Tracing | None) -> AbstractContextManager[object]:
    """For starting background tasks: what they do is not traced (tasks copy
    the context they are created in), unless they open a trace of their own."""
    return nullcontext() if tracing is None else suppress_instrumentation()


class TracingMiddleware:
    """Sits just inside RequestContextMiddleware, so inside FastAPI's server
    span and after the request id is chosen.

    Puts the request id on the span (the id a client reports finds its
    trace), records an unhandled exception on it (the outer middleware turns
    it into the 500 that marks the span as an error), and leaves probes and
    scrapes untraced, their statements and Redis calls included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _is_quiet(scope):
            with suppress_instrumentation():
                await self.app(scope, receive, send)
            return
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("request_id", current_request_id() or "")
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR))
            raise


def _cache_name(key: str) -> str:
    """ "v1:product:42" -> "product" (the cached read's declared name)."""
    parts = key.split(":")
    return parts[1] if len(parts) > 2 else parts[0]


def _failed(span: trace.Span, exc: BaseException) -> None:
    # An expected refusal (a 404 from the computation) is an answer, not a failure.
    if isinstance(exc, AppError) and exc.status_code < 500:
        return
    if isinstance(exc, Exception):
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class TracedCache(Cache):
    """The cache, with each read as a span `cache <name>`: `cache.hit`, and
    `cache.level` (local or redis) for a hit. A miss's span holds the Redis
    calls and the statements that computed the value; a hit's has no
    statement."""

    def __init__(self, tracer: trace.Tracer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracer = tracer

    async def get_or_compute(self, key: str, ttl: int, compute: Callable[[], Awaitable[bytes]]) -> Cached:
        name = _cache_name(key)
        with self._tracer.start_as_current_span(
            f"cache {name}",
            attributes={"cache.name": name},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await super().get_or_compute(key, ttl, compute)
            except BaseException as exc:
                _failed(span, exc)
                raise
            span.set_attribute("cache.hit", result.hit)
            if result.hit and not _has_attribute(span, "cache.level"):
                span.set_attribute("cache.level", "local")
            return result

    def _hit(self, key: str, value: bytes, ttl: int, generation: tuple[int, int]) -> Cached:
        # Cache calls this for a hit found in Redis (a local hit returns before).
        trace.get_current_span().set_attribute("cache.level", "redis")
        return super()._hit(key, value, ttl, generation)


def _has_attribute(span: trace.Span, name: str) -> bool:
    return isinstance(span, ReadableSpan) and name in (span.attributes or {})


class TracedEmailSender:
    """Sends through `sender` inside a span of a trace of its own: the relay
    delivers long after (and apart from) the request that wrote the message.
    Neither the recipient nor the text is recorded."""

    def __init__(self, sender: EmailSender, tracer: trace.Tracer) -> None:
        self._sender = sender
        self._tracer = tracer

    async def send(self, message: EmailMessage) -> None:
        with _fresh_context(), self._tracer.start_as_current_span("email send", kind=SpanKind.INTERNAL):
            await self._sender.send(message)


@contextmanager
def _fresh_context() -> Iterator[None]:
    """No parent span, and nothing suppressed (the relay runs untraced)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)
