from __future__ import annotations

import subprocess
import sys

from tests.support.servers import REPO


def test_importing_the_app_reads_no_environment_and_opens_nothing() -> None:
    """An unusable configuration fails only when the app is built, not on import."""
    code = "import app.main as m; assert m.app._app is None; print('imported')"
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "short",
        "DATABASE_URL": "postgresql://nowhere.invalid/x",
        "PATH": "",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_production_app_refuses_to_start_with_the_default_secret() -> None:
    code = "from app.main import create_app; create_app()"
    env = {"ENVIRONMENT": "production", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
