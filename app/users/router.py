from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.auth.dependencies import AuthDep, CurrentUser, RegistrationRateLimit
from app.platform.schemas import IdPath, problems
from app.platform.session import SessionDep
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
    response: Response,
) -> User:
    """Registers a user; the welcome e-mail goes through the outbox."""
    user = await service.register(session, data, auth.hasher.hash)
    response.headers["Location"] = f"/users/{user.id}"
    return user


@router.get("/me", response_model=UserOut, responses=problems(401))
async def read_me(user: CurrentUser) -> User:
    return user


@router.get("/{user_id}", response_model=UserOut, responses=problems(404, 422))
async def read_user(user_id: IdPath, session: SessionDep) -> User:
    return await service.get(session, user_id)
