"""Errors of the users domain (rendered as problem+json by the platform)."""

from __future__ import annotations

from app.platform.errors import Conflict, NotFound


class UserAlreadyExists(Conflict):
    def __init__(self) -> None:
        super().__init__("A user with this e-mail address or username already exists")


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("User not found")
