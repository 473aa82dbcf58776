from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response, status

from app.auth.dependencies import AuthDep, CurrentUser, RegistrationRateLimit
from app.platform.email import send_quietly
from app.platform.schemas import IdPath, problems
from app.platform.session import SessionDep
from app.platform.state import PlatformDep
from app.users import service
from app.users.models import User
from app.users.schemas import UserCreate, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problems(409, 413, 422, 429, 503),
    dependencies=[RegistrationRateLimit],
)
async def register(
    data: UserCreate,
    session: SessionDep,
    auth: AuthDep,
    platform: PlatformDep,
    response: Response,
    background: BackgroundTasks,
) -> User:
    user = await service.register(session, data, auth.hasher.hash)
    response.headers["Location"] = f"/users/{user.id}"
    # Background tasks run after the response is sent, and the session commits
    # before it is sent: the e-mail never announces an account that was rolled back.
    background.add_task(send_quietly, platform.email, service.welcome_email(user))
    return user


@router.get("/me", response_model=UserOut, responses=problems(401))
async def read_me(user: CurrentUser) -> User:
    return user


@router.get("/{user_id}", response_model=UserOut, responses=problems(404, 422))
async def read_user(user_id: IdPath, session: SessionDep) -> User:
    return await service.get(session, user_id)
