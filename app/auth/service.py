"""Login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.exceptions import (
    HashingBusy,
    InvalidAccessToken,
    InvalidCredentials,
    InvalidRefreshToken,
    NotAuthenticated,
    RefreshTokenReused,
)
from app.auth.models import RefreshToken, TokenFamily
from app.auth.passwords import PasswordHasher
from app.auth.ratelimit import RateLimiter
from app.auth.schemas import TokenPair
from app.auth.tokens import InvalidToken, TokenCodec, token_digest
from app.platform.config import Settings
from app.platform.database import utcnow
from app.platform.session import end_read, read_connection
from app.platform.state import Platform
from app.users import repository as users
from app.users.models import User


async def login(
    session: AsyncSession,
    auth: LoginServices,
    settings: Settings,
    address: str,
    login: str,
    password: str,
) -> TokenPair:
    """Checks the password, then opens a token family.

    The transaction's shape matters under a login flood: the user is read,
    then the read transaction ends and its connection goes back to the pool
    before the password hash queues for a slot (seconds, under load). Only a
    valid login opens a second, short transaction for its writes.
    """
    user = await users.get_by_login(session, login)
    credentials = _Credentials.of(user) if user is not None else None
    await end_read(session)
    account = f"user:{credentials.user_id}" if credentials is not None else f"name:{login.lower()}"
    attempt = await auth.limiter.admit_login(address, account)
    try:
        if credentials is None:
            # Same work and same answer as a wrong password: no user enumeration.
            await auth.hasher.burn_time(password)
            valid, upgraded_hash = False, None
        else:
            valid, upgraded_hash = await auth.hasher.verify(password, credentials.password_hash)
    except HashingBusy:
        await auth.limiter.login_not_evaluated(attempt)
        raise
    if not valid or credentials is None or not credentials.is_active:
        await auth.limiter.login_failed(attempt)
        raise InvalidCredentials()
    await auth.limiter.login_succeeded(attempt)
    if upgraded_hash is not None and (current := await users.get(session, credentials.user_id)) is not None:
        current.password_hash = upgraded_hash
    family = TokenFamily(id=uuid.uuid4().hex, user_id=credentials.user_id)
    await repository.add_family(session, family)
    return await _issue_pair(session, auth.tokens, settings, credentials.user_id, family.id)


@dataclass(frozen=True)
class _Credentials:
    """What a login needs of the user, read before the read transaction ends."""

    user_id: int
    password_hash: str
    is_active: bool

    @classmethod
    def of(cls, user: User) -> _Credentials:
        return cls(user_id=user.id, password_hash=user.password_hash, is_active=user.is_active)


class LoginServices(Protocol):
    hasher: PasswordHasher
    tokens: TokenCodec
    limiter: RateLimiter


async def refresh(session: AsyncSession, codec: TokenCodec, settings: Settings, raw_token: str) -> TokenPair:
    try:
        claims = codec.decode(raw_token, "refresh")
    except InvalidToken as exc:
        raise InvalidRefreshToken() from exc
    digest = token_digest(raw_token)
    now = utcnow()
    family_id = await repository.consume(session, digest, now)
    if family_id is None:
        stored = await repository.get_by_hash(session, digest)
        if stored is not None and stored.used_at is not None:
            await repository.revoke_family(session, stored.family_id, now, reason="reuse")
            raise RefreshTokenReused()
        raise InvalidRefreshToken()
    user = await users.get(session, int(claims["sub"]))
    if user is None or not user.is_active:
        raise InvalidRefreshToken()
    return await _issue_pair(session, codec, settings, user.id, family_id)


async def logout(session: AsyncSession, raw_token: str) -> None:
    """Ends the login the token belongs to. Unknown tokens are ignored, as
    RFC 7009 asks of revocation: the caller's goal (token unusable) holds."""
    stored = await repository.get_by_hash(session, token_digest(raw_token))
    if stored is not None:
        await repository.revoke_family(session, stored.family_id, utcnow(), reason="logout")


async def _issue_pair(
    session: AsyncSession, codec: TokenCodec, settings: Settings, user_id: int, family_id: str
) -> TokenPair:
    now = utcnow()
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    access = codec.issue(subject=str(user_id), token_type="access", ttl=access_ttl, now=now)
    refresh_token = codec.issue(subject=str(user_id), token_type="refresh", ttl=refresh_ttl, now=now)
    await repository.add_token(
        session,
        RefreshToken(family_id=family_id, token_hash=token_digest(refresh_token), expires_at=now + refresh_ttl),
    )
    return TokenPair(
        access_token=access,
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
    )


def _subject(codec: TokenCodec, token: str | None) -> int:
    """The user id a bearer access token vouches for, or 401."""
    if not token:
        raise NotAuthenticated()
    try:
        claims = codec.decode(token, "access")
    except InvalidToken as exc:
        raise InvalidAccessToken() from exc
    return int(claims["sub"])


async def authenticate(session: AsyncSession, codec: TokenCodec, token: str | None) -> User:
    """The user behind a bearer access token, or 401."""
    user = await users.get(session, _subject(codec, token))
    if user is None or not user.is_active:
        raise InvalidAccessToken()
    return user


async def authenticate_read(platform: Platform, codec: TokenCodec, token: str | None) -> Row[Any]:
    """The same checks as `authenticate`, for routes that only read: the
    user's row on a read connection (no session, no transaction).

    The token is checked before a connection is taken, and the connection
    goes back to the pool as soon as the row is read: a flood of bad tokens
    holds no connection, and a good one holds it for one SELECT.
    """
    subject = _subject(codec, token)
    async with read_connection(platform) as connection:
        user = await users.read(connection, subject)
    if user is None or not user.is_active:
        raise InvalidAccessToken()
    return user
