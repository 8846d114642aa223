"""Who is calling: the ``current_user`` dependency and permission checks routes adopt.

A route that needs a signed-in user lists ``user: CurrentUserDep``; one that needs a
permission lists ``user: Annotated[CurrentUser, Depends(require(Permission.x))]``.
The access token names its session, and the session is looked up on every request,
so signing out or disabling a user takes effect at once, not when the token expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg import AsyncConnection
from pydantic import BaseModel

from api.deps import ConnDep
from auth import secret_file
from auth.roles import ROLE_PERMISSIONS, Permission, Role, can
from auth.tokens import TokenError, TokenExpired, verify_access
from eldercare.settings import Settings
from storage import accounts

TOKEN_URL = "/api/v1/auth/login"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


class CurrentUser(BaseModel):
    id: int
    login: str
    display_name: str
    role: Role
    community_id: int | None
    caregiver_id: int | None
    session_id: int

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]


def signing_key(settings: Settings) -> str:
    """The configured secret, else the one generated into the data folder at first start."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return secret_file.read_or_create(settings.home / "secret_key")


def now(request: Request) -> datetime:
    """The app's clock: ``app.state.clock`` when a test injects one, else UTC now."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def key(request: Request) -> str:
    state = request.app.state
    if getattr(state, "signing_key", None) is None:
        state.signing_key = signing_key(state.settings)
    return state.signing_key


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def user_from_token(
    conn: AsyncConnection, token: str | None, *, key: str, now: datetime
) -> CurrentUser:
    """The user a bearer token stands for; raises 401 saying why not.  Also for WebSockets."""
    if not token:
        raise unauthorized("not signed in: send Authorization: Bearer <access token>")
    try:
        claims = verify_access(token, key, now=now)
    except TokenExpired:
        raise unauthorized("access token expired: refresh it or sign in again") from None
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    row = await accounts.session_user(conn, session_id=claims.session_id, user_id=claims.user_id)
    if row is None:
        raise unauthorized("session ended (signed out, revoked or account disabled): sign in again")
    return CurrentUser(**row, session_id=claims.session_id)


async def current_user(
    request: Request,
    conn: ConnDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> CurrentUser:
    return await user_from_token(conn, token, key=key(request), now=now(request))


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]


def require(permission: Permission) -> Callable[[CurrentUser], Awaitable[CurrentUser]]:
    """A dependency: the signed-in user if their role grants ``permission``, else 403."""

    async def check(user: CurrentUserDep) -> CurrentUser:
        if not can(user.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"a {user.role.value} may not do this (needs {permission.value})",
            )
        return user

    return check
