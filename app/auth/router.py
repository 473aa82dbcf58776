from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import service
from app.auth.schemas import RefreshRequest, TokenPair
from app.core.db import SessionDep
from app.core.ratelimit import client_address
from app.core.resources import ResourcesDep
from app.core.schemas import problems

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPair, responses=problems(401, 422, 429, 503))
async def issue_token(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    username: Annotated[str, Form(min_length=1, max_length=320, description="Username or e-mail address")],
    password: Annotated[str, Form(min_length=1, max_length=128)],
) -> TokenPair:
    """OAuth2 password flow: a short-lived access token and a refresh token.
    Attempts are limited per client address and per login name (429)."""
    settings = resources.settings
    window = settings.login_rate_window_seconds
    await resources.limiter.check("login-address", client_address(request), settings.login_rate_limit, window)
    await resources.limiter.check("login-name", username.lower(), settings.login_rate_limit, window)
    return await service.login(session, resources.hasher, resources.tokens, resources.settings, username, password)


@router.post("/refresh", response_model=TokenPair, responses=problems(401, 422, 503))
async def refresh_token(body: RefreshRequest, session: SessionDep, resources: ResourcesDep) -> TokenPair:
    """Rotates the refresh token: the one sent is used up. Sending a used-up
    token again is treated as theft and ends every token of that login."""
    return await service.refresh(session, resources.tokens, resources.settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(422, 503))
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Ends the login the refresh token belongs to."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
