"""Typed messages (alerts, orders, caregivers) pushed at once to ``/ws/live`` clients.

One :class:`MessageFeed` per kind of news: ``publish`` may be called from any thread,
each subscriber keeps the newest version of each object by ``(kind, id)`` (a slow
client gets each object's latest state once, never a backlog), and a version already
published (by this node, then heard back from NOTIFY) is sent once.  Each subscriber
has a filter, so a client only ever receives what its user's scope reaches.

:class:`SerialSocket` lets several pumps share one WebSocket: sends never interleave,
and a pump waits for the accept before writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

_ENCODE = msgspec.json.Encoder()
RECENT_MAX: Final = 4096  # versions remembered, to drop a repeat heard back from NOTIFY
Accepts = Callable[[str, dict[str, Any]], bool]


def everything(kind: str, body: dict[str, Any]) -> bool:
    return True


class SerialSocket:
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


class Subscriber:
    __slots__ = ("accepts", "loop", "pending", "wake")

    def __init__(self, loop: asyncio.AbstractEventLoop, accepts: Accepts) -> None:
        self.loop = loop
        self.accepts = accepts
        self.pending: dict[tuple[str, int], dict[str, Any]] = {}  # (kind, id) -> newest body
        self.wake = asyncio.Event()


class MessageFeed:
    """Thread-safe fan-out of ``{"type": kind, kind: body}`` messages to subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._recent: OrderedDict[Hashable, None] = OrderedDict()
        self.published = 0
        # Told of each message once a socket has it (api.metrics: alarm latency).
        self.on_sent: Callable[[str, dict[str, Any]], None] | None = None

    def publish(self, kind: str, body: dict[str, Any], version: Hashable = None) -> bool:
        """Queue ``body`` for every subscriber whose filter takes it.  Any thread.

        ``version`` names what changed; the same version published twice is sent once.
        Returns whether it was queued (whether or not anyone may see it).
        """
        with self._lock:
            if version is not None:
                key = (kind, body["id"], version)
                if key in self._recent:
                    return False
                self._recent[key] = None
                if len(self._recent) > RECENT_MAX:
                    self._recent.popitem(last=False)
            self.published += 1
            woken = [s for s in self._subscribers if _takes(s, kind, body)]
            for sub in woken:
                sub.pending[(kind, int(body["id"]))] = body
        for sub in woken:
            with contextlib.suppress(RuntimeError):  # its loop already closed: shutting down
                sub.loop.call_soon_threadsafe(sub.wake.set)
        return True

    def subscribe(self, accepts: Accepts = everything) -> Subscriber:
        sub = Subscriber(asyncio.get_running_loop(), accepts)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    async def pump(self, sub: Subscriber, socket: SerialSocket) -> None:
        """Send ``sub``'s messages to ``socket`` until the connection ends."""
        await socket.accepted.wait()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                await sub.wake.wait()
                sub.wake.clear()
                with self._lock:
                    pending, sub.pending = sub.pending, {}
                for (kind, _), body in pending.items():
                    await socket.send_text(_ENCODE.encode({"type": kind, kind: body}).decode())
                    if self.on_sent is not None:
                        self.on_sent(kind, body)


def _takes(sub: Subscriber, kind: str, body: dict[str, Any]) -> bool:
    try:
        return sub.accepts(kind, body)
    except (KeyError, TypeError, ValueError):  # a body without the fields to judge: not sent
        return False
