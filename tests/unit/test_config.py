from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.platform.config import DEFAULT_SECRET_KEY, Settings

STRONG = "s" * 40


def test_defaults_run_embedded_sqlite_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.environment == "development"
    assert settings.sqlalchemy_url.drivername == "sqlite+aiosqlite"
    assert settings.redis_url is None


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "short-secret", "x" * 31])
def test_production_refuses_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_production_refuses_short_previous_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY_PREVIOUS"):
        Settings(environment="production", secret_key=STRONG, secret_key_previous="old")


def test_production_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ValidationError, match="CORS"):
        Settings(environment="production", secret_key=STRONG, cors_origins="*", cors_allow_credentials=True)


def test_production_refuses_diagnostic_routes() -> None:
    with pytest.raises(ValidationError, match="DIAGNOSTIC_ROUTES"):
        Settings(environment="production", secret_key=STRONG, diagnostic_routes=True)


def test_production_accepts_a_strong_configuration() -> None:
    settings = Settings(environment="production", secret_key=STRONG, cors_origins="*", cors_allow_credentials=False)
    assert settings.cors_origins == ["*"]


def test_development_tolerates_the_default_secret() -> None:
    assert Settings(environment="development").secret_key.get_secret_value() == DEFAULT_SECRET_KEY


def test_cors_origins_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    assert Settings().cors_origins == ["https://a.example.com", "https://b.example.com"]


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ("sqlite:///./x.db", "sqlite+aiosqlite"),
    ],
)
def test_database_url_gets_the_async_driver(url: str, driver: str) -> None:
    assert Settings(database_url=url).sqlalchemy_url.drivername == driver


def test_database_password_overrides_and_needs_no_escaping() -> None:
    settings = Settings(database_url="postgresql://app@db:5432/app", database_password="p@ss:w/rd?")
    assert settings.sqlalchemy_url.password == "p@ss:w/rd?"
    assert "p@ss" not in repr(settings)


def test_http_email_backend_needs_a_url() -> None:
    with pytest.raises(ValidationError, match="EMAIL_API_URL"):
        Settings(email_backend="http")


def test_pool_knobs_are_validated() -> None:
    with pytest.raises(ValidationError):
        Settings(db_pool_size=0)
    with pytest.raises(ValidationError):
        Settings(db_pool_timeout=0)


def test_secrets_are_read_from_files_in_secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes mounts Secrets as files; none needs to be in the environment."""
    (tmp_path / "SECRET_KEY").write_text(STRONG)
    (tmp_path / "DATABASE_PASSWORD").write_text("from-a-file")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings = Settings(environment="production")
    assert settings.secret_key.get_secret_value() == STRONG
    assert settings.sqlalchemy_url.password == "from-a-file"


def test_without_secrets_dir_no_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "SECRET_KEY").write_text(STRONG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert Settings().secret_key.get_secret_value() == DEFAULT_SECRET_KEY


@pytest.mark.parametrize("value", ["*", "proxy.example", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses_or_networks(value: str) -> None:
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies=value)


def test_trusted_proxies_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.168.1.7"]
