"""Auth's services and the FastAPI dependencies every router uses:
the current user, and the attempt limits of logins and registrations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Row

from app.auth import service
from app.auth.exceptions import HashingBusy
from app.auth.passwords import PasswordHasher
from app.auth.ratelimit import RateLimiter, client_address
from app.auth.tokens import TokenCodec
from app.platform.session import SessionDep
from app.platform.state import Platform, PlatformDep
from app.users.models import User


@dataclass
class AuthServices:
    hasher: PasswordHasher
    tokens: TokenCodec
    limiter: RateLimiter


async def create_auth_services(platform: Platform) -> AuthServices:
    """Built once at startup by the composition root (app/main.py)."""
    settings = platform.settings
    hasher = PasswordHasher(settings)
    await hasher.warm_up()
    return AuthServices(
        hasher=hasher,
        tokens=TokenCodec(settings),
        limiter=RateLimiter(platform.redis, settings),
    )


async def get_auth(request: Request) -> AuthServices:
    auth: AuthServices = request.state.auth
    return auth


AuthDep = Annotated[AuthServices, Depends(get_auth)]

# auto_error=False: a missing token is answered by our own 401 problem+json
# (with WWW-Authenticate: Bearer), not FastAPI's default body.
bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def get_current_user(session: SessionDep, auth: AuthDep, token: Annotated[str | None, Depends(bearer)]) -> User:
    return await service.authenticate(session, auth.tokens, token)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_user_row(
    platform: PlatformDep, auth: AuthDep, token: Annotated[str | None, Depends(bearer)]
) -> Row[Any]:
    """The caller's row, for routes that only read and need no session: the
    same token checks and 401s as CurrentUser, one SELECT, no transaction."""
    return await service.authenticate_read(platform, auth.tokens, token)


CurrentUserRow = Annotated[Row[Any], Depends(get_current_user_row)]


async def limit_registrations(request: Request, auth: AuthDep, platform: PlatformDep) -> None:
    """Registrations per client address (429 with Retry-After past the limit)."""
    refuse_when_hashing_is_full(auth)
    settings = platform.settings
    await auth.limiter.check(
        "register-address", client_address(request), settings.register_rate_limit, settings.register_rate_window_seconds
    )


def refuse_when_hashing_is_full(auth: AuthServices) -> None:
    """A full hash queue is answered before any other work (Redis, the
    database): under a flood the refusal must be cheap to be quick. The queue
    itself still enforces its bound (app/auth/passwords.py)."""
    if auth.hasher.slots.full:
        raise HashingBusy()


async def limit_logins(request: Request, auth: AuthDep, platform: PlatformDep) -> None:
    """Login attempts per client address, before any work. The limits per
    account need the account and the outcome: app/auth/service.py applies them."""
    refuse_when_hashing_is_full(auth)
    settings = platform.settings
    await auth.limiter.check(
        "login-address", client_address(request), settings.login_address_rate_limit, settings.login_rate_window_seconds
    )


RegistrationRateLimit = Depends(limit_registrations)
LoginRateLimit = Depends(limit_logins)


async def get_optional_user(
    request: Request, session: SessionDep, auth: AuthDep, token: Annotated[str | None, Depends(bearer)]
) -> User | None:
    """The caller on routes where signing in is optional: None without an
    Authorization header, but a header that does not authenticate is still 401."""
    if "authorization" not in request.headers:
        return None
    return await service.authenticate(session, auth.tokens, token)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
