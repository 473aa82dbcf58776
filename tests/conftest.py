"""Shared test helpers: settings tuned for tests, users, tokens."""

from __future__ import annotations

from typing import Any

from app.platform.config import Settings

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-and-hs512-0123456789abcdef"


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests. Argon2 runs with cheap parameters (hashing cost is
    not what these tests check); everything else keeps its real default."""
    values: dict[str, Any] = {
        "secret_key": TEST_SECRET,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
        "password_hash_parallelism": 1,
        "log_level": "WARNING",
        # Suites register and log in far more often than a person; the
        # rate-limit tests set their own limits.
        "login_rate_limit": 100_000,
        "register_rate_limit": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Each suite directory carries its marker, so `-m integration` selects it."""
    import pytest

    for item in items:
        for suite in ("integration", "smoke", "image", "chart", "e2e"):
            if f"/tests/{suite}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, suite))
