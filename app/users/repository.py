"""Queries on users; the only module that talks SQL about them."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.users.models import User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


_USERS = cast(Table, User.__table__)
# Built once (it keeps its cache key); the same SQL as session.get(User, id).
_BY_ID = select(_USERS).where(_USERS.c.id == bindparam("user_id"))


async def read(connection: AsyncConnection, user_id: int) -> Row[Any] | None:
    """The user's row on a read connection, without ORM hydration (the
    authenticated user of read-only routes, read on every request)."""
    result = await connection.execute(_BY_ID, {"user_id": user_id})
    return result.one_or_none()


async def get_by_login(session: AsyncSession, login: str) -> User | None:
    """`login` is a username or an e-mail address (usernames cannot hold '@')."""
    column = User.email if "@" in login else User.username
    result = await session.execute(select(User).where(func.lower(column) == login.lower()))
    return result.scalar_one_or_none()


async def find_taken(session: AsyncSession, email: str, username: str) -> User | None:
    result = await session.execute(
        select(User)
        .where(or_(func.lower(User.email) == email.lower(), func.lower(User.username) == username.lower()))
        .limit(1)
    )
    return result.scalar_one_or_none()


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user
