"""Tracing is configured by the standard OTEL_* variables, and off without an endpoint."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased

from app.main import create_app
from app.platform.logging import RequestIdFilter, TraceContextFilter
from app.platform.tracing import TracingMiddleware, enabled_by, provider_from_environment
from tests.conftest import make_settings

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_an_endpoint_turns_tracing_on(environ: dict[str, str], enabled: bool) -> None:
    assert enabled_by(environ) is enabled


def test_the_provider_follows_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the chart sets: endpoint, sampler, ratio, service name.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.observability:4318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "storefront-staging")

    provider = provider_from_environment("1.2.3")

    assert isinstance(provider, TracerProvider)
    try:
        assert isinstance(provider.sampler, ParentBased)
        # A root span is kept when the low 64 bits of its trace id fall under 10 % of their range.
        assert provider.sampler.should_sample(None, 2**64 // 20, "root").decision is Decision.RECORD_AND_SAMPLE
        assert provider.sampler.should_sample(None, 2**64 // 5, "root").decision is not Decision.RECORD_AND_SAMPLE
        assert provider.resource.attributes["service.name"] == "storefront-staging"
        assert provider.resource.attributes["service.version"] == "1.2.3"
        [processor] = provider._active_span_processor._span_processors
        assert isinstance(processor, BatchSpanProcessor)
        assert processor.span_exporter._endpoint == "http://collector.observability:4318/v1/traces"
    finally:
        provider.shutdown()


def test_defaults_our_service_name_and_samples_by_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
    provider = provider_from_environment("1.2.3")
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == "storefront"
        assert isinstance(provider.sampler, ParentBased)
        assert provider.sampler.should_sample(None, 2**64 - 1, "root").decision is Decision.RECORD_AND_SAMPLE
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
    ],
)
def test_an_unsupported_exporter_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        provider_from_environment("1.2.3")


def _middleware(app: FastAPI) -> list[str]:
    return [getattr(m.cls, "__name__", "") for m in app.user_middleware]


def _trace_filters() -> list[logging.Filter | object]:
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)]
    return [f for h in handlers for f in h.filters if isinstance(f, TraceContextFilter)]


def test_without_an_endpoint_the_app_installs_no_tracing() -> None:
    app = create_app(make_settings())
    assert TracingMiddleware.__name__ not in _middleware(app)
    assert not app._native_telemetry.enabled()
    assert _trace_filters() == []


def test_with_an_endpoint_the_app_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    app = create_app(make_settings())
    assert TracingMiddleware.__name__ in _middleware(app)
    assert app._native_telemetry.enabled()
    assert len(_trace_filters()) == 1
    # Leave the process's logging as an untraced app sets it.
    create_app(make_settings())
