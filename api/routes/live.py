"""``/ws/live``: coalesced position and vital-sign updates for the map, and alerts,
orders and caregivers as they change, each client seeing only its user's scope.

Signing in: a browser cannot set headers on a WebSocket, so it offers the access token
as a subprotocol, ``new WebSocket(url, ["bearer", token])``, and the server answers
with ``bearer``; other clients may send ``Authorization: Bearer <token>`` instead.  The
token is never put in the URL (URLs end up in access logs).  Without a valid token the
socket is accepted and closed at once with code 4401 and the reason, so a page can
tell "sign in again" from a network failure; it is closed with 4401 too when the
session ends later (sign-out, account disabled), noticed within ``SCOPE_REFRESH_S``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.auth_deps import CurrentUser, key, now, user_from_token
from api.live import SIGNED_OUT
from auth.scope import Scope
from storage import accounts
from storage.scope import load_scope

router = APIRouter(tags=["live"])
SUBPROTOCOL = "bearer"


def bearer_of(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The offered token and the subprotocol to answer with."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) >= 2 and offered[0] == SUBPROTOCOL and offered[1]:
        return offered[1], SUBPROTOCOL
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip(), None
    return None, SUBPROTOCOL if SUBPROTOCOL in offered else None


class LiveViewer:
    """A signed-in user watching ``/ws/live``: their scope, reloaded on refresh."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        user: CurrentUser,
        scope: Scope,
        clock: Callable[[], datetime],
    ) -> None:
        self.pool = pool
        self.user = user
        self.scope = scope
        self.clock = clock

    def sees_elder(self, elder_id: int) -> bool:
        return self.scope.sees_elder(elder_id)

    def accepts(self, kind: str, body: dict[str, Any]) -> bool:
        return self.scope.sees_message(kind, body)

    async def refresh(self) -> set[int] | None:
        u = self.user
        async with self.pool.connection() as conn:
            if await accounts.session_user(conn, session_id=u.session_id, user_id=u.id) is None:
                return None
            fresh = await _scope(conn, u, self.clock())
        before, self.scope = self.scope.elder_ids, fresh
        if fresh.elder_ids is None or before is None:
            return set()
        return set(fresh.elder_ids - before)


async def _scope(conn: AsyncConnection, user: CurrentUser, at: datetime) -> Scope:
    return await load_scope(
        conn,
        role=user.role,
        user_id=user.id,
        community_id=user.community_id,
        caregiver_id=user.caregiver_id,
        now=at,
    )


@router.websocket("/ws/live")
async def live(websocket: WebSocket) -> None:
    """Messages: ``{"type": "update", "server_time", "elders": [partial ElderLatest]}``
    about once per ``live_interval_s``, ``{"type": "ping"}`` when idle, and
    ``{"type": "alert" | "order" | "caregiver", ...}`` as they change."""
    token, subprotocol = bearer_of(websocket)
    app = websocket.app
    pool: AsyncConnectionPool = app.state.pool
    clock: Callable[[], datetime] = lambda: now(websocket)  # noqa: E731  # the app's clock
    try:
        async with pool.connection() as conn:
            user = await user_from_token(conn, token, key=key(websocket), now=clock())  # type: ignore[arg-type]
            scope = await _scope(conn, user, clock())
    except HTTPException as exc:
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code=SIGNED_OUT, reason=str(exc.detail)[:120])
        return
    viewer = LiveViewer(pool, user, scope, clock)
    await app.state.hub.serve(websocket, viewer, subprotocol=subprotocol)
