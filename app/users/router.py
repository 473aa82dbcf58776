from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.auth.dependencies import AuthDep, CurrentUserRow, OptionalUser, RegistrationRateLimit
from app.platform.openapi import link
from app.platform.responses import model_json
from app.platform.schemas import IdPath, problems
from app.platform.session import SessionDep
from app.users import service
from app.users.models import User
from app.users.schemas import PublicUserOut, UserCreate, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={
        201: {"links": {"GetUserById": link("/users/{user_id}", "get", user_id="$response.body#/id")}},
        **problems(409, 429),
    },
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
async def read_me(user: CurrentUserRow) -> Response:
    return model_json(UserOut.model_validate(user))


@router.get(
    "/{user_id}",
    response_model=UserOut | PublicUserOut,
    responses=problems(401, 404),
    # Signing in is optional here: the empty requirement says so.
    openapi_extra={"security": [{}]},
)
async def read_user(user_id: IdPath, session: SessionDep, caller: OptionalUser) -> UserOut | PublicUserOut:
    """The caller itself gets its full record; anyone else, signed in or not,
    the public profile only (no e-mail address)."""
    user = await service.get(session, user_id)
    if caller is not None and caller.id == user.id:
        return UserOut.model_validate(user)
    return PublicUserOut.model_validate(user)
