from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, func, true
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.database import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    username: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Case-insensitive uniqueness, enforced by the database (races included):
# "Alice@Example.com" and "alice@example.com" are one address, "Bob" and "bob"
# one username.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
Index("uq_users_username_lower", func.lower(User.username), unique=True)
