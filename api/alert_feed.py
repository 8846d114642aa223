"""Alerts pushed to every dashboard on the live WebSocket, as they happen.

:class:`AlertingHub` is the live hub plus :meth:`~AlertingHub.publish_alert`: each
``/ws/live`` client also receives ``{"type": "alert", "alert": Alert}`` messages,
sent at once (not on the map's coalescing interval).  ``publish_alert`` may be called
from any thread -- the ingest thread after its commit, the API's routes, the
escalator.  Per client, pending alerts are keyed by id: a slow client gets each
alert's newest version once, never a backlog of its intermediate states.

The hub's own loop (``LiveHub.serve``) is reused untouched: the socket it writes to is
wrapped so that its sends and the alert sends never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.alert_models import AlertPublic
from api.live import LiveHub

_ENCODE = msgspec.json.Encoder()
log = logging.getLogger("eldercare.alerts")


class _Subscriber:
    __slots__ = ("loop", "pending", "wake")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[int, dict[str, Any]] = {}  # alert id -> newest JSON-ready alert
        self.wake = asyncio.Event()


class AlertFeed:
    """Thread-safe fan-out of alert messages to subscribers on one event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        self.published = 0

    def publish_alert(self, alert: dict[str, Any]) -> None:
        """Queue ``alert`` (a storage Alert dict) for every subscriber.  Any thread."""
        try:  # through the API's model: the pushed alert is the REST one, key for key
            body = AlertPublic.model_validate(alert).model_dump(mode="json")
        except ValueError:  # a push must never break the caller (the ingest thread)
            log.exception("alert not pushed: not in the Alert shape")
            return
        with self._lock:
            self.published += 1
            subscribers = list(self._subscribers)
            for sub in subscribers:
                sub.pending[body["id"]] = body
        for sub in subscribers:
            with contextlib.suppress(RuntimeError):  # its loop already closed: shutting down
                sub.loop.call_soon_threadsafe(sub.wake.set)

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    async def pump(self, sub: _Subscriber, socket: _SerialSocket) -> None:
        """Send ``sub``'s alerts to ``socket`` until the connection ends."""
        await socket.accepted.wait()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                await sub.wake.wait()
                sub.wake.clear()
                with self._lock:
                    pending, sub.pending = sub.pending, {}
                for alert in pending.values():
                    message = _ENCODE.encode({"type": "alert", "alert": alert}).decode()
                    await socket.send_text(message)


class _SerialSocket:
    """A WebSocket whose ``send_text`` calls are serialized and whose ``accept`` is known."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._send_lock = asyncio.Lock()
        self.accepted = asyncio.Event()

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        await self._ws.accept(*args, **kwargs)
        self.accepted.set()

    async def send_text(self, data: str) -> None:
        async with self._send_lock:
            await self._ws.send_text(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class AlertingHub(LiveHub):
    """The live hub, whose clients also receive alert messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alerts = AlertFeed()

    def publish_alert(self, alert: dict[str, Any]) -> None:
        """Push ``{"type": "alert", "alert": alert}`` to every dashboard.  Any thread."""
        self.alerts.publish_alert(alert)

    async def serve(self, websocket: WebSocket) -> None:
        socket = _SerialSocket(websocket)
        sub = self.alerts.subscribe()
        pump = asyncio.create_task(self.alerts.pump(sub, socket), name="alert-pump")
        try:
            await super().serve(socket)  # type: ignore[arg-type]  # a WebSocket by duck typing
        finally:
            self.alerts.unsubscribe(sub)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
