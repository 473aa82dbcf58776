"""OpenTelemetry tracing, with the app's own set-up and an in-memory exporter:
the span tree of a cached read (miss and hit), an error, the outgoing
e-mail, and the trace id in the JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from logging.handlers import QueueHandler
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from app.platform.config import Settings
from app.platform.email import HttpEmailSender
from app.platform.logging import RequestIdFilter, TraceContextFilter, flush_logs, log_writer
from app.platform.state import Platform
from app.platform.tracing import TracedCache
from tests.integration.test_welcome_email import eventually
from tests.support.api import Account, account, create_product, new_user_payload
from tests.support.app import Started, started


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # INFO: the access log line is one of those that must carry the trace id.
    return {"diagnostic_routes": True, "log_level": "INFO"}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
async def app(settings: Settings, provider: TracerProvider) -> AsyncIterator[Started]:
    """The conftest's app, traced."""
    async with started(settings, tracer_provider=provider) as running:
        yield running


@pytest.fixture
async def owner(client: httpx.AsyncClient, exporter: InMemorySpanExporter) -> Account:
    owner = await account(client, "owner")
    # Registration enqueued a welcome e-mail: let the relay send it (a trace
    # of its own) before a test starts recording.
    await eventually(lambda: any(s.name == "email send" for s in exporter.get_finished_spans()))
    return owner


def the(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def is_statement(span: ReadableSpan) -> bool:
    return "db.system" in attributes(span) or "db.system.name" in attributes(span)


def is_redis(span: ReadableSpan) -> bool:
    return attributes(span).get("db.system") == "redis" or attributes(span).get("db.system.name") == "redis"


def server_span(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    return server


def assert_one_tree(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    """All spans form one trace under one root; returns the root."""
    assert len({s.context.trace_id for s in spans}) == 1, [s.name for s in spans]
    ids = {s.context.span_id for s in spans}
    [root] = [s for s in spans if s.parent is None]
    assert all(parent_of(s) in ids for s in spans if s is not root)
    return root


def describe(spans: Sequence[ReadableSpan]) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(name, kind, parent name, attributes): what a failed assertion shows."""
    names = {s.context.span_id: s.name for s in spans}
    return [(s.name, s.kind.name, names.get(parent_of(s) or 0), attributes(s)) for s in spans]


async def test_a_miss_is_one_trace_http_then_cache_then_the_statement(
    client: httpx.AsyncClient, owner: Account, exporter: InMemorySpanExporter
) -> None:
    product = await create_product(client, owner, name="Traced lamp")
    exporter.clear()

    response = await client.get(f"/products/{product['id']}")

    assert response.headers["x-cache"] == "MISS"
    spans = exporter.get_finished_spans()
    root = assert_one_tree(spans)
    assert root is server_span(spans)
    assert root.name == "GET /products/{product_id}"
    assert attributes(root)["http.route"] == "/products/{product_id}"
    assert attributes(root)["http.response.status_code"] == 200
    assert attributes(root)["request_id"] == response.headers["x-request-id"]

    cache = the(spans, "cache product")
    assert parent_of(cache) == root.context.span_id
    assert attributes(cache) == {"cache.name": "product", "cache.hit": False}
    statements = [s for s in spans if is_statement(s) and not is_redis(s)]
    assert statements, describe(spans)
    assert all(parent_of(s) == cache.context.span_id for s in statements), describe(spans)
    assert any(s.name.startswith("SELECT") for s in statements), describe(spans)
    redis_calls = [s for s in spans if is_redis(s)]
    # The Lua scripts that read or take the lease, then store under it.
    # (The first use of a script on a server also loads it: SCRIPT LOAD, again.)
    assert {s.name for s in redis_calls} - {"SCRIPT LOAD"} == {"EVALSHA"}, describe(spans)
    assert all(parent_of(s) == cache.context.span_id for s in redis_calls)

    # Nothing of the product itself reaches a span: statements are sent with
    # placeholders, Redis commands with their arguments masked.
    recorded = json.dumps([attributes(s) for s in spans])
    assert "Traced lamp" not in recorded
    assert "EVALSHA ? ? ? ? ? ?" in recorded  # the script's keys and arguments masked


async def test_a_hit_has_no_statement(
    client: httpx.AsyncClient, owner: Account, exporter: InMemorySpanExporter
) -> None:
    product = await create_product(client, owner)
    assert (await client.get(f"/products/{product['id']}")).headers["x-cache"] == "MISS"
    exporter.clear()

    assert (await client.get(f"/products/{product['id']}")).headers["x-cache"] == "HIT"

    spans = exporter.get_finished_spans()
    root = assert_one_tree(spans)
    cache = the(spans, "cache product")
    assert parent_of(cache) == root.context.span_id
    assert attributes(cache) == {"cache.name": "product", "cache.hit": True, "cache.level": "local"}
    assert [s.name for s in spans if is_statement(s)] == [], describe(spans)


async def test_a_hit_in_redis_has_a_redis_call_and_no_statement(
    client: httpx.AsyncClient,
    owner: Account,
    exporter: InMemorySpanExporter,
    settings: Settings,
    provider: TracerProvider,
) -> None:
    product = await create_product(client, owner)
    assert (await client.get(f"/products/{product['id']}")).headers["x-cache"] == "MISS"

    # Another replica: its in-process level is empty, Redis has the value.
    async with (
        started(settings, tracer_provider=provider) as other,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other.asgi), base_url="http://replica") as replica,
    ):
        exporter.clear()
        assert (await replica.get(f"/products/{product['id']}")).headers["x-cache"] == "HIT"
        spans = exporter.get_finished_spans()

    assert_one_tree(spans)
    cache = the(spans, "cache product")
    assert attributes(cache) == {"cache.name": "product", "cache.hit": True, "cache.level": "redis"}
    [get] = [s for s in spans if is_redis(s)]
    assert get.name == "EVALSHA"  # the value, or a lease when there is none
    assert parent_of(get) == cache.context.span_id
    assert [s.name for s in spans if is_statement(s) and not is_redis(s)] == []


async def test_a_missing_product_is_not_an_error_on_its_spans(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    assert (await client.get("/products/999999")).status_code == 404
    spans = exporter.get_finished_spans()
    assert_one_tree(spans)
    assert server_span(spans).status.status_code is StatusCode.UNSET
    assert the(spans, "cache product").status.status_code is StatusCode.UNSET


async def test_an_unhandled_error_marks_the_request_span(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()

    response = await client.get("/_diag/error")

    assert response.status_code == 500
    root = server_span(exporter.get_finished_spans())
    assert root.status.status_code is StatusCode.ERROR
    assert attributes(root)["http.response.status_code"] == 500
    [event] = root.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "RuntimeError"
    assert attributes(root)["request_id"] == response.headers["x-request-id"]


async def test_probes_are_not_traced(client: httpx.AsyncClient, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    for path in ("/health", "/livez", "/readyz"):
        assert (await client.get(path)).status_code == 200
    # /readyz ran a statement and a Redis PING: neither left a span.
    assert exporter.get_finished_spans() == ()


@pytest.fixture
async def mail_api() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A mail API on a loopback port: records each request, answers 202."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        received.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/send", received


async def test_the_email_is_a_trace_of_its_own_without_the_message(
    client: httpx.AsyncClient,
    platform: Platform,
    exporter: InMemorySpanExporter,
    mail_api: tuple[str, list[bytes]],
) -> None:
    url, received = mail_api
    settings = platform.settings.model_copy(update={"email_backend": "http", "email_api_url": url})
    # The platform's own HTTP client, as the configured HTTP backend uses it.
    platform.email = HttpEmailSender(platform.http, settings)
    payload = new_user_payload("mailed")
    exporter.clear()

    assert (await client.post("/users/", json=payload)).status_code == 201
    await eventually(lambda: any(s.name == "email send" for s in exporter.get_finished_spans()))

    assert len(received) == 1
    assert payload["email"].encode() in received[0]
    spans = exporter.get_finished_spans()
    request_trace = server_span(spans).context.trace_id
    send = the(spans, "email send")
    assert send.parent is None
    assert send.context.trace_id != request_trace
    email_trace = [s for s in spans if s.context.trace_id == send.context.trace_id]
    [post] = [s for s in email_trace if s is not send]
    assert post.kind is SpanKind.CLIENT
    assert parent_of(post) == send.context.span_id
    assert post.status.status_code is StatusCode.UNSET
    assert url in json.dumps(attributes(post))
    recorded = json.dumps([attributes(s) for s in email_trace])
    assert payload["email"] not in recorded
    assert payload["username"] not in recorded
    # The relay's own statements (claim, mark as sent) are not traced.
    assert all(s.context.trace_id in (request_trace, send.context.trace_id) for s in spans), describe(spans)


def app_log_handler() -> logging.Handler:
    """The handler the app's logging set-up put on the root logger: it queues
    records, with their request and trace context, for the writer thread."""
    [handler] = [h for h in logging.getLogger().handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)]
    assert isinstance(handler, QueueHandler)
    return handler


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the app's JSON log writer writes, for the duration of a test
    (call flush_logs() before reading)."""
    handler = log_writer()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


async def test_log_lines_carry_the_trace_id(
    client: httpx.AsyncClient, owner: Account, exporter: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    product = await create_product(client, owner)
    exporter.clear()
    log_lines.seek(0)
    log_lines.truncate()

    response = await client.get(f"/products/{product['id']}")
    error = await client.get("/_diag/error")

    flush_logs()
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    roots = {attributes(s)["request_id"]: s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER}
    for answer in (response, error):
        request_id = answer.headers["x-request-id"]
        root = roots[request_id]
        mine = [line for line in lines if line["request_id"] == request_id]
        assert any(line["message"] == "request" for line in mine)
        for line in mine:
            assert line["trace_id"] == format_trace_id(root.context.trace_id)
            assert line["span_id"] == format_span_id(root.context.span_id)
            assert line["trace_sampled"] is True
    [traceback] = [line for line in lines if line["message"] == "unhandled error"]
    assert traceback["trace_id"] == format_trace_id(roots[error.headers["x-request-id"]].context.trace_id)
    assert "RuntimeError" in traceback["exc_info"]


def instrumented(platform: Platform) -> set[str]:
    """Which of the platform's parts OpenTelemetry has wrapped."""
    found = set()
    listeners = platform.engine.sync_engine.dispatch.before_cursor_execute
    # Not just "any listener": the database liveness watch has its own.
    if any(isinstance(getattr(listener, "__self__", None), EngineTracer) for listener in listeners):
        found.add("engine")
    assert platform.redis is not None
    if hasattr(platform.redis.client.execute_command, "__wrapped__"):
        found.add("redis")
    if getattr(platform.http, "_is_instrumented_by_opentelemetry", False):
        found.add("http")
    if isinstance(platform.cache, TracedCache):
        found.add("cache")
    return found


async def test_tracing_on_instruments_the_platform(platform: Platform) -> None:
    # The counterpart of the test below: it shows that `instrumented` sees them.
    assert instrumented(platform) == {"engine", "redis", "http", "cache"}
    assert [type(f) for f in app_log_handler().filters] == [RequestIdFilter, TraceContextFilter]


async def test_tracing_off_installs_nothing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    async with started(settings) as running:
        assert instrumented(running.state["platform"]) == set()
        assert [type(f) for f in app_log_handler().filters] == [RequestIdFilter]
        # No global provider either: a library's spans would go nowhere.
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
