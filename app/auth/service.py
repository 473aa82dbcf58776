"""Login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.exceptions import (
    InvalidAccessToken,
    InvalidCredentials,
    InvalidRefreshToken,
    NotAuthenticated,
    RefreshTokenReused,
)
from app.auth.models import RefreshToken, TokenFamily
from app.auth.passwords import PasswordHasher
from app.auth.schemas import TokenPair
from app.auth.tokens import InvalidToken, TokenCodec, token_digest
from app.platform.config import Settings
from app.platform.database import utcnow
from app.users import repository as users
from app.users.models import User


async def login(
    session: AsyncSession, hasher: PasswordHasher, codec: TokenCodec, settings: Settings, login: str, password: str
) -> TokenPair:
    user = await users.get_by_login(session, login)
    if user is None:
        # Same work and same answer as a wrong password: no user enumeration.
        await hasher.burn_time(password)
        raise InvalidCredentials()
    valid, upgraded_hash = await hasher.verify(password, user.password_hash)
    if not valid or not user.is_active:
        raise InvalidCredentials()
    if upgraded_hash is not None:
        user.password_hash = upgraded_hash
    family = TokenFamily(id=uuid.uuid4().hex, user_id=user.id)
    await repository.add_family(session, family)
    return await _issue_pair(session, codec, settings, user, family.id)


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
    return await _issue_pair(session, codec, settings, user, family_id)


async def logout(session: AsyncSession, raw_token: str) -> None:
    """Ends the login the token belongs to. Unknown tokens are ignored, as
    RFC 7009 asks of revocation: the caller's goal (token unusable) holds."""
    stored = await repository.get_by_hash(session, token_digest(raw_token))
    if stored is not None:
        await repository.revoke_family(session, stored.family_id, utcnow(), reason="logout")


async def _issue_pair(
    session: AsyncSession, codec: TokenCodec, settings: Settings, user: User, family_id: str
) -> TokenPair:
    now = utcnow()
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    access = codec.issue(subject=str(user.id), token_type="access", ttl=access_ttl, now=now)
    refresh_token = codec.issue(subject=str(user.id), token_type="refresh", ttl=refresh_ttl, now=now)
    await repository.add_token(
        session,
        RefreshToken(family_id=family_id, token_hash=token_digest(refresh_token), expires_at=now + refresh_ttl),
    )
    return TokenPair(
        access_token=access,
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
    )


async def authenticate(session: AsyncSession, codec: TokenCodec, token: str | None) -> User:
    """The user behind a bearer access token, or 401."""
    if not token:
        raise NotAuthenticated()
    try:
        claims = codec.decode(token, "access")
    except InvalidToken as exc:
        raise InvalidAccessToken() from exc
    user = await users.get(session, int(claims["sub"]))
    if user is None or not user.is_active:
        raise InvalidAccessToken()
    return user
