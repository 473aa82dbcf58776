from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from app.platform.schemas import NoControlChars

Username = Annotated[str, StringConstraints(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]
# Control characters are refused: they are typing accidents or probes, and
# some password stacks (bcrypt) end a password at NUL.
Password = Annotated[str, Field(min_length=8, max_length=128), NoControlChars]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[
        EmailStr,
        Field(
            max_length=254,
            description="A deliverable address: special-use domains (RFC 6761: .test, .localhost, ...) are refused",
        ),
    ]
    username: Username
    password: Password


class UserOut(BaseModel):
    """A user as the user itself sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str
    created_at: datetime
    is_active: bool


class PublicUserOut(BaseModel):
    """A user as anyone else sees it: never an e-mail address (ids are
    sequential, so anything here can be collected for every user)."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: int
    username: str
    created_at: datetime
