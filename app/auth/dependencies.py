from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from app.auth import service
from app.core.db import SessionDep
from app.core.resources import ResourcesDep
from app.users.models import User

# auto_error=False: a missing token is answered by our own 401 problem+json
# (with WWW-Authenticate: Bearer), not FastAPI's default body.
bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def get_current_user(
    session: SessionDep,
    resources: ResourcesDep,
    token: Annotated[str | None, Depends(bearer)],
) -> User:
    return await service.authenticate(session, resources.tokens, token)


CurrentUser = Annotated[User, Depends(get_current_user)]
