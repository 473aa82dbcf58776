from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import service
from app.auth.dependencies import AuthDep, LoginRateLimit
from app.auth.ratelimit import client_address
from app.auth.schemas import RefreshRequest, TokenPair
from app.platform.schemas import problems
from app.platform.session import SessionDep
from app.platform.state import PlatformDep

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPair, responses=problems(401, 422, 429, 503), dependencies=[LoginRateLimit])
async def issue_token(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    platform: PlatformDep,
    username: Annotated[str, Form(min_length=1, max_length=320, description="Username or e-mail address")],
    password: Annotated[str, Form(min_length=1, max_length=128)],
) -> TokenPair:
    """OAuth2 password flow: a short-lived access token and a refresh token.

    429 (with Retry-After): too many attempts from this client address, or
    too many failures from it against this account, or, from an address this
    account has not signed in from, too many failures against the account
    (an exponential delay). 503 (with Retry-After): too many sign-ins at once
    on this server; retry shortly."""
    return await service.login(session, auth, platform.settings, client_address(request), username, password)


@router.post("/refresh", response_model=TokenPair, responses=problems(401, 422, 503))
async def refresh_token(body: RefreshRequest, session: SessionDep, auth: AuthDep, platform: PlatformDep) -> TokenPair:
    """Rotates the refresh token: the one sent is used up. Sending a used-up
    token again is treated as theft and ends every token of that login."""
    return await service.refresh(session, auth.tokens, platform.settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(422, 503))
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Ends the login the refresh token belongs to."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
