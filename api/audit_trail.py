"""Recording to the audit trail from a route: who (the signed-in user, if any), from
where, and when by the app's clock.

Routes that already require sign-in pass their user; a route that does not yet
(the alert acknowledge and resolve, until every route requires it) asks for
:data:`OptionalUserDep` and records the name the body gave when nobody signed in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from psycopg import AsyncConnection

from api.auth_deps import CurrentUser, key, now, oauth2_scheme, user_from_token
from api.deps import ConnDep
from storage import audit


async def optional_user(
    request: Request,
    conn: ConnDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> CurrentUser | None:
    """The signed-in user, or None without a (valid) token: this never refuses."""
    if not token:
        return None
    try:
        return await user_from_token(conn, token, key=key(request), now=now(request))
    except HTTPException:
        return None


OptionalUserDep = Annotated[CurrentUser | None, Depends(optional_user)]


async def record(
    conn: AsyncConnection,
    request: Request,
    user: CurrentUser | None,
    action: str,
    **fields: Any,
) -> int:
    """:func:`storage.audit.record` with the request's time and client address."""
    return await audit.record(
        conn,
        user,
        action,
        at=now(request),
        client_addr=request.client.host if request.client else None,
        **fields,
    )
