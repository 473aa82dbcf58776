"""The documented docs policy: DOCS_ENABLED unset serves /docs, /redoc and
/openapi.json in development and not in production; set, it decides."""

from __future__ import annotations

import pytest

from app.platform.config import Settings

STRONG = "s" * 40


@pytest.fixture(autouse=True)
def _no_docs_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCS_ENABLED", raising=False)


@pytest.mark.parametrize(("environment", "served"), [("development", True), ("production", False)])
def test_unset_follows_the_environment(environment: str, served: bool) -> None:
    assert Settings(environment=environment, secret_key=STRONG).docs_enabled is served


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize(("value", "served"), [("true", True), ("false", False), ("1", True), ("0", False)])
def test_set_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: str, value: str, served: bool
) -> None:
    monkeypatch.setenv("DOCS_ENABLED", value)
    assert Settings(environment=environment, secret_key=STRONG).docs_enabled is served


def test_the_environment_variable_alone_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG)
    assert Settings().docs_enabled is False
