"""Live fan-out to dashboards: per-elder coalescing, one message per interval.

The ingest thread calls :meth:`LiveHub.publish` after each commit; the hub keeps a
mirror of every elder's newest state (so the map's red/normal can be judged on
the whole state, not a fragment), and each interval sends every client one JSON
message with just the elders that changed.  A slow client is never waited on: its
pending updates merge in place until it takes them, so it gets the newest state,
not a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.attention import attention_reasons

NameResolver = Callable[[list[int]], Awaitable[dict[int, str]]]
_ENCODE = msgspec.json.Encoder()
PING_EVERY_S = 20.0


class _Client:
    __slots__ = ("pending", "wake")

    def __init__(self) -> None:
        self.pending: dict[int, dict[str, Any]] = {}
        self.wake = asyncio.Event()


class LiveHub:
    def __init__(self, interval_s: float = 1.0, resolve_names: NameResolver | None = None) -> None:
        self.interval_s = interval_s
        self.resolve_names = resolve_names
        self._lock = threading.Lock()
        self._incoming: dict[int, dict[str, Any]] = {}
        self._state: dict[int, dict[str, Any]] = {}
        self._clients: set[_Client] = set()
        self.sent_messages = 0

    # --- producer side: any thread -------------------------------------------

    def publish(self, updates: dict[int, dict[str, Any]]) -> None:
        with self._lock:
            for elder_id, fields in updates.items():
                self._incoming.setdefault(elder_id, {}).update(fields)

    def prime(self, rows: Iterable[dict[str, Any]]) -> None:
        """Load the full state (the same rows as ``GET /api/v1/latest``) at start."""
        with self._lock:
            for row in rows:
                self._state[row["elder_id"]] = dict(row)

    # --- the broadcaster: the API's event loop --------------------------------

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self, now: datetime | None = None) -> int:
        """Merge what arrived, judge attention, queue it to every client; return elders sent."""
        with self._lock:
            incoming, self._incoming = self._incoming, {}
        if not incoming:
            return 0
        now = now or datetime.now(UTC)
        unnamed = [e for e in incoming if "name" not in self._state.get(e, {})]
        if unnamed and self.resolve_names is not None:
            for elder_id, name in (await self.resolve_names(unnamed)).items():
                incoming[elder_id]["name"] = name
        for elder_id, fields in incoming.items():
            state = self._state.setdefault(elder_id, {"elder_id": elder_id})
            state.update(fields)
            reasons = attention_reasons(state, now)
            fields["elder_id"] = elder_id
            fields["attention"] = bool(reasons)
            fields["attention_reasons"] = reasons
            fields.pop("status_at", None)
        for client in self._clients:
            for elder_id, fields in incoming.items():
                client.pending.setdefault(elder_id, {}).update(fields)
            client.wake.set()
        return len(incoming)

    # --- one WebSocket --------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client = _Client()
        self._clients.add(client)
        receiver = asyncio.create_task(_drain_incoming(websocket))
        try:
            while not receiver.done():
                woken = asyncio.ensure_future(client.wake.wait())
                await asyncio.wait(
                    {woken, receiver}, timeout=PING_EVERY_S, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
                if receiver.done():  # the client left (or the server is shutting down)
                    break
                client.wake.clear()
                if client.pending:
                    pending, client.pending = client.pending, {}
                    message = {
                        "type": "update",
                        "server_time": datetime.now(UTC),
                        "elders": list(pending.values()),
                    }
                else:
                    message = {"type": "ping", "server_time": datetime.now(UTC)}
                await websocket.send_text(_ENCODE.encode(message).decode())
                self.sent_messages += 1
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._clients.discard(client)
            receiver.cancel()

    @property
    def client_count(self) -> int:
        return len(self._clients)


async def _drain_incoming(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
