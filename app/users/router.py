from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response, status

from app.auth.dependencies import CurrentUser
from app.core.db import SessionDep
from app.core.email import send_quietly
from app.core.ratelimit import client_address
from app.core.resources import ResourcesDep
from app.core.schemas import problems
from app.users import service
from app.users.models import User
from app.users.schemas import UserCreate, UserOut

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=problems(409, 413, 422, 429, 503)
)
async def register(
    data: UserCreate,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
    background: BackgroundTasks,
) -> User:
    settings = resources.settings
    await resources.limiter.check(
        "register-address", client_address(request), settings.register_rate_limit, settings.register_rate_window_seconds
    )
    user = await service.register(session, resources.hasher, resources.cache, data)
    response.headers["Location"] = f"/users/{user.id}"
    # Background tasks run after the response is sent, and the session commits
    # before it is sent: the e-mail never announces an account that was rolled back.
    background.add_task(send_quietly, resources.email, service.welcome_email(user))
    return user


@router.get("/me", response_model=UserOut, responses=problems(401))
async def read_me(user: CurrentUser) -> User:
    return user


@router.get("/{user_id}", response_model=UserOut, responses=problems(404, 422))
async def read_user(user_id: UserId, session: SessionDep) -> User:
    return await service.get(session, user_id)
