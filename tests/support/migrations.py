"""Running the migrations with extra revisions written by a test (a broken
one, one that needs a lock, one from a "newer release")."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from tests.support.servers import REPO


def write_revision(directory: Path, revision: str, down_revision: str | None, upgrade: str) -> None:
    body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    (directory / f"{revision}.py").write_text(
        f'"""A revision written by a test."""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def upgrade(
    url: URL,
    target: str = "heads",
    *,
    extra_versions: Path | None = None,
    wait_seconds: float = 0,
    lock_timeout_ms: int = 5000,
) -> None:
    """`alembic upgrade`, with `extra_versions` as a second version directory."""
    config = Config(str(REPO / "alembic.ini"))
    if extra_versions is not None:
        config.set_main_option("version_locations", f"{REPO / 'migrations' / 'versions'}{os.pathsep}{extra_versions}")
    config.attributes.update(
        database_url=url, skip_logging_config=True, wait_seconds=wait_seconds, lock_timeout_ms=lock_timeout_ms
    )
    command.upgrade(config, target)


def downgrade(url: URL, target: str) -> None:
    config = Config(str(REPO / "alembic.ini"))
    config.attributes.update(database_url=url, skip_logging_config=True)
    command.downgrade(config, target)


def current(url: URL) -> None:
    """`alembic current` (prints the database's revision)."""
    config = Config(str(REPO / "alembic.ini"))
    config.attributes.update(database_url=url, skip_logging_config=True)
    command.current(config)
