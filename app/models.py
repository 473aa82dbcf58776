"""Imports every model so the metadata (and Alembic) sees all tables."""

from app.auth.models import RefreshToken, TokenFamily
from app.users.models import User

__all__ = ["RefreshToken", "TokenFamily", "User"]
