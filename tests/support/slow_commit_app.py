"""`app.main:app` with every database COMMIT delayed by SLOW_COMMIT_SECONDS
(without blocking the event loop): matrix row 4 runs it under uvicorn to show
that the response never leaves before the commit."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_only

from app.main import app

__all__ = ["app"]

DELAY = float(os.environ.get("SLOW_COMMIT_SECONDS", "0.2"))


@event.listens_for(Engine, "commit")
def _slow_commit(_connection: Any) -> None:
    # Runs in SQLAlchemy's greenlet just before the COMMIT is sent: sleep on
    # the event loop, as a slow disk or a distant primary would make us wait.
    await_only(asyncio.sleep(DELAY))
