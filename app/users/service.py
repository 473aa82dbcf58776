"""User rules: registration and lookup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.platform import outbox
from app.platform.email import EmailMessage
from app.platform.session import end_read
from app.users import repository
from app.users.exceptions import UserAlreadyExists, UserNotFound
from app.users.models import User
from app.users.schemas import UserCreate

# Argon2id in auth (app/auth/passwords.py); passed in so users need not know how.
HashPassword = Callable[[str], Awaitable[str]]


async def register(session: AsyncSession, data: UserCreate, hash_password: HashPassword) -> User:
    # Checked before hashing so a duplicate costs no Argon2 run; the unique
    # indexes still decide when two registrations race.
    if await repository.find_taken(session, data.email, data.username) is not None:
        raise UserAlreadyExists()
    # No connection is held while the hash queues for a slot (seconds under a
    # flood): the read transaction ends here, the insert opens a new one.
    await end_read(session)
    user = User(email=data.email, username=data.username, password_hash=await hash_password(data.password))
    try:
        await repository.add(session, user)
    except IntegrityError as exc:
        raise UserAlreadyExists() from exc
    # In the same transaction: announced only if the account is committed.
    outbox.enqueue(session, welcome_email(user))
    return user


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


def welcome_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Welcome to Storefront",
        text=f"Hello {user.username},\n\nyour account is ready. Sign in with your username or this e-mail address.\n",
    )
