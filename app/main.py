"""The composition root: `create_app(settings)` wires the platform, the domains
and operations together, and `app.main:app` is what ASGI servers run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from opentelemetry.trace import TracerProvider
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import models  # noqa: F401  (every mapper configured before first use)
from app.auth.dependencies import AuthServices, create_auth_services
from app.auth.router import router as auth_router
from app.ops import diagnostics, health
from app.orders.router import router as orders_router
from app.platform.config import Settings
from app.platform.error_handlers import install_error_handlers
from app.platform.gc_pauses import startup_objects_frozen
from app.platform.logging import configure_logging
from app.platform.metrics import Telemetry, expose_metrics
from app.platform.middleware import RequestContextMiddleware
from app.platform.state import Platform, open_platform
from app.platform.tracing import Tracing, TracingMiddleware, provider_from_environment
from app.products.router import router as products_router
from app.stats.router import router as stats_router
from app.users.router import router as users_router

API_VERSION = "1.0.0"


class AppState(TypedDict):
    """The lifespan state: built once at startup, handed by Starlette to every
    request (`request.state.platform`, `request.state.auth`)."""

    platform: Platform
    auth: AuthServices


def _lifespan(
    settings: Settings, telemetry: Telemetry, tracing: Tracing | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[AppState]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        try:
            async with open_platform(settings, telemetry, tracing) as platform:
                auth = await create_auth_services(platform)
                try:
                    with startup_objects_frozen():
                        yield AppState(platform=platform, auth=auth)
                finally:
                    auth.hasher.close()
        finally:
            if tracing is not None:
                await tracing.shutdown()

    return lifespan


def _tracing(tracer_provider: TracerProvider | None) -> Tracing | None:
    if tracer_provider is not None:
        return Tracing(tracer_provider, owned=False)
    from_environment = provider_from_environment(API_VERSION)
    return None if from_environment is None else Tracing(from_environment, owned=True)


def create_app(settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The application for `settings` (default: from the environment).

    Traces go where the OTEL_* variables say (off without an endpoint), or
    to `tracer_provider` when one is given (tests: an in-memory exporter).
    """
    settings = settings or Settings()
    tracing = _tracing(tracer_provider)
    configure_logging(settings.log_level, trace_context=tracing is not None)
    telemetry = Telemetry()
    docs = settings.docs_enabled
    app = FastAPI(
        title="Storefront API",
        version=API_VERSION,
        lifespan=_lifespan(settings, telemetry, tracing),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # Off: FastAPI's own OpenTelemetry support stays out of every request,
        # whatever global provider a library may have set.
        telemetry=tracing.fastapi_telemetry()
        if tracing
        else {"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(users_router)
    app.include_router(auth_router)
    app.include_router(products_router)
    app.include_router(orders_router)
    app.include_router(stats_router)
    if settings.diagnostic_routes:
        app.include_router(diagnostics.router)

    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-Cache", "Location", "Retry-After"],
        )
    if not settings.metrics_port:
        expose_metrics(app, telemetry.registry)
    if settings.trusted_proxies:
        # The client address (rate limits) and scheme from X-Forwarded-For and
        # -Proto, believed only from these proxies; uvicorn runs with
        # --no-proxy-headers so that this is the one place that decides.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if tracing is not None:
        app.add_middleware(TracingMiddleware)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=telemetry.http)
    return app


class _DeferredApp:
    """What `app.main:app` names for ASGI servers.

    The real application is built on the first ASGI call (the server's lifespan
    startup), so importing this module reads no environment and opens nothing.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


app = _DeferredApp()
