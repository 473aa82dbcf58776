"""User rules: registration and lookup."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache
from app.core.email import EmailMessage
from app.core.errors import Conflict, NotFound
from app.core.security import PasswordHasher
from app.stats.service import invalidate_stats
from app.users import repository
from app.users.models import User
from app.users.schemas import UserCreate

DUPLICATE_DETAIL = "A user with this e-mail address or username already exists"


async def register(session: AsyncSession, hasher: PasswordHasher, cache: Cache, data: UserCreate) -> User:
    # Checked before hashing so a duplicate costs no Argon2 run; the unique
    # indexes still decide when two registrations race.
    if await repository.find_taken(session, data.email, data.username) is not None:
        raise Conflict(DUPLICATE_DETAIL)
    user = User(email=data.email, username=data.username, password_hash=await hasher.hash(data.password))
    try:
        await repository.add(session, user)
    except IntegrityError as exc:
        raise Conflict(DUPLICATE_DETAIL) from exc
    invalidate_stats(session, cache)
    return user


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


def welcome_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Welcome to Storefront",
        text=f"Hello {user.username},\n\nyour account is ready. Sign in with your username or this e-mail address.\n",
    )
