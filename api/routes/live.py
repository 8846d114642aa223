"""``/ws/live``: coalesced position and vital-sign updates for the map."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

router = APIRouter(tags=["live"])


@router.websocket("/ws/live")
async def live(websocket: WebSocket) -> None:
    """Messages: ``{"type": "update", "server_time", "elders": [partial ElderLatest]}``
    about once per ``live_interval_s``, and ``{"type": "ping"}`` when idle."""
    await websocket.app.state.hub.serve(websocket)
