"""Settings from environment variables (12-factor).

With nothing set, the service runs on an embedded SQLite file and an in-process
cache so that `make run` works on a fresh machine. `ENVIRONMENT=production`
refuses the development defaults that would be unsafe there.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url

DEFAULT_SECRET_KEY = "insecure-development-secret-key-do-not-use-in-production"
MIN_PRODUCTION_SECRET_BYTES = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./storefront.db"


class DatabaseSettings(BaseSettings):
    """What the migrations and the schema wait need: the database alone (no
    signing key, so `alembic upgrade` runs with DATABASE_URL only)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # --- database -----------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    # Lets the password live in a Secret apart from the URL (and need no escaping).
    database_password: SecretStr | None = None
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    # Short on purpose: a request waiting long for a connection is worse than a
    # quick 503 the client can retry.
    db_pool_timeout: float = Field(default=2.0, gt=0, le=60)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    # Check pooled PostgreSQL connections that may be dead (app/platform/db_liveness.py):
    # those idle longer than DB_PING_IDLE_SECONDS or last used before a
    # connection error; a ping gets DB_PING_TIMEOUT. Healthy busy connections
    # are not pinged. Statements stalled past the ping timeout on a server that
    # no longer answers are ended.
    db_pool_pre_ping: bool = True
    db_ping_idle_seconds: float = Field(default=5.0, ge=0, le=3600)
    db_ping_timeout: float = Field(default=0.5, gt=0, le=10)
    db_connect_timeout: float = Field(default=3.0, gt=0, le=60)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    db_application_name: str = "storefront-api"
    # How long `alembic upgrade` waits for an unreachable database (0: fail at once).
    db_wait_seconds: float = Field(default=0.0, ge=0, le=3600)
    # How long a migration's DDL may wait for a table lock before it fails (and
    # the Job retries): a queued ALTER would block every query behind it.
    db_migration_lock_timeout_ms: int = Field(default=5000, ge=100, le=600_000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secrets may also come as files, one per variable (SECRET_KEY,
        DATABASE_PASSWORD, ...), in the directory SECRETS_DIR names: Kubernetes
        mounts Secrets that way, and files stay out of the process environment.
        Read when Settings() is built, never at import."""
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings, dotenv_settings)
        if secrets_dir := os.environ.get("SECRETS_DIR"):
            sources += (SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir),)
        return sources

    @property
    def sqlalchemy_url(self) -> URL:
        """DATABASE_URL with the async driver chosen and DATABASE_PASSWORD applied."""
        url = make_url(self.database_url)
        if url.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
            url = url.set(drivername="postgresql+asyncpg")
        elif url.drivername == "sqlite":
            url = url.set(drivername="sqlite+aiosqlite")
        if self.database_password is not None:
            url = url.set(password=self.database_password.get_secret_value())
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.get_backend_name() == "sqlite"


class Settings(DatabaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    app_name: str = "storefront"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # /docs, /redoc and /openapi.json. Unset: served in development, not in
    # production (they map the whole attack surface); set it to override.
    docs_enabled: bool = Field(default=None, validate_default=True)

    # --- redis ----------------------------------------------------------------
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    redis_timeout: float = Field(default=0.25, gt=0, le=10)
    redis_max_connections: int = Field(default=50, ge=1, le=10_000)

    # --- cache ----------------------------------------------------------------
    product_cache_ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    stats_cache_ttl_seconds: int = Field(default=30, ge=1, le=86_400)
    # In-process first level in front of Redis; 0 turns it off.
    local_cache_max_entries: int = Field(default=10_000, ge=0, le=1_000_000)
    # ...and its memory budget (keys, values and bookkeeping): the bound that
    # keeps a pod within its memory limit whatever the size of the values.
    local_cache_max_mib: int = Field(default=32, ge=1, le=4096)
    # Consecutive Redis failures that open the circuit, and how long it stays open.
    cache_breaker_threshold: int = Field(default=3, ge=1, le=100)
    cache_breaker_cooldown_seconds: float = Field(default=5.0, gt=0, le=300)

    # --- attempt limits (app/auth/ratelimit.py; README "Login limits") ---------
    rate_limit_enabled: bool = True
    # Failed logins per (client address, account) in a window, then 429 for that address only.
    login_rate_limit: int = Field(default=10, ge=1)
    login_rate_window_seconds: int = Field(default=60, ge=1)
    # Login attempts per client address (all accounts) in the same window.
    login_address_rate_limit: int = Field(default=100, ge=1)
    # Failures from unfamiliar addresses an account absorbs before they must
    # wait a delay that doubles per further failure, up to the maximum.
    login_account_free_failures: int = Field(default=10, ge=1, le=1000)
    login_account_max_delay_seconds: float = Field(default=300.0, ge=1, le=86_400)
    # The account's failure count is forgotten this long after its last failure.
    login_account_window_seconds: int = Field(default=3600, ge=1, le=30 * 86_400)
    # An address the account signed in from stays familiar (exempt from the delay) this long.
    login_familiar_days: int = Field(default=30, ge=1, le=365)
    register_rate_limit: int = Field(default=20, ge=1)
    register_rate_window_seconds: int = Field(default=3600, ge=1)

    # --- auth -----------------------------------------------------------------
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    # Still accepted for verification during a key rotation window.
    secret_key_previous: SecretStr | None = None
    jwt_issuer: str = "storefront"
    jwt_audience: str = "storefront-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=14 * 86_400, ge=60)
    # Argon2id cost (RFC 9106 / OWASP: m=64 MiB, t=3, p=4 is the argon2-cffi default).
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65_536, ge=1024, le=1_048_576)
    password_hash_parallelism: int = Field(default=4, ge=1, le=16)
    # Each hash holds a thread and 64 MiB for ~0.1 s: bound them so a login flood
    # cannot exhaust memory or the thread pool.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Callers allowed to wait for a hash slot; past that, 503 at once. With two
    # slots at ~0.13 s a hash, 16 waiting is at most ~1 s of queueing.
    password_hash_queue: int = Field(default=16, ge=0, le=10_000)

    # --- http -----------------------------------------------------------------
    # Addresses or networks of the proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed. Empty: nobody's, so a client cannot pick
    # the address the per-address rate limits count.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # A second listener that serves only /metrics (the main port then has none),
    # so an Ingress in front of the API never exposes them. 0: on the main port.
    metrics_port: int = Field(default=0, ge=0, le=65_535)
    cors_origins: Annotated[list[str], NoDecode] = []
    cors_allow_credentials: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    readiness_timeout: float = Field(default=1.0, gt=0, le=10)
    # After SIGTERM, keep serving (with /readyz answering 503) for this long so
    # load balancers stop sending traffic before the server stops accepting it.
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=120)

    # --- e-mail ---------------------------------------------------------------
    email_backend: Literal["log", "http"] = "log"
    email_api_url: str | None = None
    email_api_token: SecretStr | None = None
    email_from: str = "Storefront <no-reply@storefront.invalid>"
    email_timeout: float = Field(default=5.0, gt=0, le=60)
    # Outbox delivery: attempts before a message is given up (logged as an
    # error), the first retry delay (doubling each time, up to 15 minutes),
    # and how often the relay looks for due messages besides being woken.
    email_max_attempts: int = Field(default=10, ge=1, le=100)
    email_retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=300)

    # Test-only routes (/_diag/*) used by the fault-injection suites.
    diagnostic_routes: bool = False

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from exc
        return value

    @field_validator("docs_enabled", mode="before")
    @classmethod
    def _docs_follow_environment(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return info.data.get("environment") != "production"
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.email_backend == "http" and not self.email_api_url:
            raise ValueError("EMAIL_BACKEND=http needs EMAIL_API_URL")
        if self.environment != "production":
            return self
        problems = []
        for name in ("secret_key", "secret_key_previous"):
            secret = getattr(self, name)
            if secret is None:
                continue
            value = secret.get_secret_value()
            if value == DEFAULT_SECRET_KEY or len(value.encode()) < MIN_PRODUCTION_SECRET_BYTES:
                problems.append(
                    f"{name.upper()} must be set to a random value of at least "
                    f"{MIN_PRODUCTION_SECRET_BYTES} bytes in production"
                )
        if "*" in self.cors_origins and self.cors_allow_credentials:
            problems.append("CORS_ORIGINS='*' with CORS_ALLOW_CREDENTIALS is refused in production")
        if self.diagnostic_routes:
            problems.append("DIAGNOSTIC_ROUTES must not be enabled in production")
        if problems:
            raise ValueError("; ".join(problems))
        return self
