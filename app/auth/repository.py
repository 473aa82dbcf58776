"""Queries on token families and refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RefreshToken, TokenFamily


async def add_family(session: AsyncSession, family: TokenFamily) -> None:
    session.add(family)
    await session.flush()


async def add_token(session: AsyncSession, token: RefreshToken) -> None:
    session.add(token)
    await session.flush()


async def consume(session: AsyncSession, token_hash: str, now: datetime) -> str | None:
    """Marks a live token used, atomically; returns its family id, or None.

    A single conditional UPDATE: of two concurrent refreshes with one token,
    the second waits on the row lock, then finds used_at set and matches
    nothing. Exactly one wins.
    """
    live_families = select(TokenFamily.id).where(TokenFamily.revoked_at.is_(None))
    result = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > now,
            RefreshToken.family_id.in_(live_families),
        )
        .values(used_at=now)
        .returning(RefreshToken.family_id)
    )
    return result.scalar_one_or_none()


async def get_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    result = await session.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    return result.scalar_one_or_none()


async def revoke_family(session: AsyncSession, family_id: str, now: datetime, reason: str) -> None:
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
