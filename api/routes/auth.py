"""Sign in, refresh, sign out, who am I (OAuth2 password flow, FastAPI's security tutorial).

``POST /api/v1/auth/login`` takes the OAuth2 password form (so Swagger's *Authorize*
button works) and returns a short-lived access token and a rotating refresh token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth_deps import CurrentUserDep, key, now, unauthorized
from api.deps import ConnDep, SettingsDep
from api.models import Problem
from auth.passwords import verify_password
from auth.rate_limit import LoginPolicy, check_login
from auth.roles import Permission, Role
from auth.tokens import AccessClaims, issue_access, new_refresh_token, refresh_token_hash
from eldercare.settings import Settings
from storage import accounts

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
UNAUTHORIZED = {401: {"model": Problem}}
ATTEMPTS_KEPT = timedelta(days=1)


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid.")
    refresh_token: str = Field(description="Good for one use at /api/v1/auth/refresh.")
    refresh_expires_in: int


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    id: int
    login: str
    display_name: str
    role: Role
    role_zh: str
    community_id: int | None
    caregiver_id: int | None
    permissions: list[Permission]


def _policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        max_failures=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window=timedelta(minutes=settings.login_window_minutes),
    )


def _client_addr(request: Request) -> str:
    # Behind a reverse proxy, run uvicorn with --forwarded-allow-ips so this is the
    # real client and not the proxy (else every user shares one address limit).
    return request.client.host if request.client else "unknown"


async def _issue(
    request: Request, conn: ConnDep, settings: Settings, *, user_id: int, role: str, sid: int
) -> TokenPair:
    t = now(request)
    access_ttl = timedelta(minutes=settings.access_token_minutes)
    refresh_ttl = timedelta(days=settings.refresh_token_days)
    refresh = new_refresh_token()
    await accounts.add_refresh_token(
        conn,
        session_id=sid,
        token_hash=refresh_token_hash(refresh),
        issued_at=t,
        expires_at=t + refresh_ttl,
    )
    access = issue_access(AccessClaims(user_id, sid, role), key(request), now=t, ttl=access_ttl)
    return TokenPair(
        access_token=access,
        expires_in=int(access_ttl.total_seconds()),
        refresh_token=refresh,
        refresh_expires_in=int(refresh_ttl.total_seconds()),
    )


@router.post(
    "/login",
    response_model=TokenPair,
    responses={**UNAUTHORIZED, 403: {"model": Problem}, 429: {"model": Problem}},
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
) -> TokenPair:
    """Sign in with login name and password (form fields ``username``, ``password``)."""
    t = now(request)
    addr = _client_addr(request)
    policy = _policy(settings)
    name = form.username[:100]  # no login is longer; don't store megabytes of a typo
    by_login, by_addr = await accounts.recent_failures(
        conn, login=name, client_addr=addr, since=t - policy.window
    )
    blocked = check_login(login_failures=by_login, address_failures=by_addr, now=t, policy=policy)
    if blocked is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed sign-ins: try again in {blocked.retry_after_s} s",
            headers={"Retry-After": str(blocked.retry_after_s)},
        )
    user = await accounts.user_for_login(conn, name)
    # Argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    ok = await run_in_threadpool(
        verify_password, form.password, user["password_hash"] if user else None
    )
    if not ok or user is None:
        await accounts.record_attempt(conn, login=name, client_addr=addr, at=t, succeeded=False)
        await conn.commit()  # the failure must count although this request ends in an error
        raise unauthorized("wrong login or password")
    if not user["active"]:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="account disabled: ask an administrator"
        )
    await accounts.record_attempt(conn, login=name, client_addr=addr, at=t, succeeded=True)
    await accounts.prune_attempts(conn, before=t - max(ATTEMPTS_KEPT, policy.window))
    sid = await accounts.open_session(
        conn,
        user_id=user["id"],
        now=t,
        client_addr=addr,
        user_agent=request.headers.get("user-agent"),
    )
    return await _issue(request, conn, settings, user_id=user["id"], role=user["role"], sid=sid)


_REFRESH_REFUSED = {
    "unknown": "unknown refresh token: sign in again",
    "expired": "refresh token expired: sign in again",
    "revoked": "session ended: sign in again",
    "reused": "refresh token already used: the session is ended for safety, sign in again",
    "inactive": "account disabled: ask an administrator",
}


@router.post("/refresh", response_model=TokenPair, responses=UNAUTHORIZED)
async def refresh(
    body: RefreshRequest, request: Request, conn: ConnDep, settings: SettingsDep
) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is spent."""
    use = await accounts.use_refresh_token(
        conn, refresh_token_hash(body.refresh_token), now=now(request)
    )
    if use.outcome != "ok" or use.user is None or use.session_id is None:
        await conn.commit()  # a reuse has revoked the session: keep that
        raise unauthorized(_REFRESH_REFUSED.get(use.outcome, "refresh refused"))
    return await _issue(
        request, conn, settings, user_id=use.user["id"], role=use.user["role"], sid=use.session_id
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
async def logout(user: CurrentUserDep, request: Request, conn: ConnDep) -> Response:
    """End this session: its access and refresh tokens stop working at once."""
    await accounts.revoke_session(conn, user.session_id, now=now(request), why="signed out")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me, responses=UNAUTHORIZED)
async def me(user: CurrentUserDep) -> Me:
    return Me(
        **user.model_dump(exclude={"session_id"}),
        role_zh=user.role.label_zh,
        permissions=sorted(user.permissions),
    )
