"""Live fan-out to dashboards: per-elder coalescing, one message per interval.

The ingest thread calls :meth:`LiveHub.publish` after each commit; the hub keeps a
mirror of every elder's newest state (so the map's red/normal can be judged on
the whole state, not a fragment), and each interval sends every client one JSON
message with just the elders that changed.  A slow client is never waited on: its
pending updates merge in place until it takes them, so it gets the newest state,
not a backlog.

Each client sees only the elders its viewer (the signed-in user's scope) reaches: the
map updates, and the typed messages of the feeds (:mod:`api.feed`) the subclasses add
to :attr:`LiveHub.feeds`.  The viewer is refreshed every ``SCOPE_REFRESH_S`` (a
caregiver's new order brings its elder onto their map, and the elder's current state
with it); a viewer whose session ended closes the socket with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.attention import attention_reasons
from api.feed import MessageFeed, SerialSocket, everything

NameResolver = Callable[[list[int]], Awaitable[dict[int, str]]]
_ENCODE = msgspec.json.Encoder()
PING_EVERY_S = 20.0
SCOPE_REFRESH_S = 10.0
SIGNED_OUT = 4401  # a WebSocket close code in the application range: "sign in again"


class Viewer(Protocol):
    """Who is watching: what they may see, kept current."""

    def sees_elder(self, elder_id: int) -> bool: ...

    def accepts(self, kind: str, body: dict[str, Any]) -> bool: ...

    async def refresh(self) -> set[int] | None:
        """Reload; the elder ids newly in view, or ``None`` when the session ended."""
        ...


class _Client:
    __slots__ = ("pending", "viewer", "wake")

    def __init__(self, viewer: Viewer | None) -> None:
        self.pending: dict[int, dict[str, Any]] = {}
        self.wake = asyncio.Event()
        self.viewer = viewer

    def sees(self, elder_id: int) -> bool:
        return self.viewer is None or self.viewer.sees_elder(elder_id)


class LiveHub:
    def __init__(self, interval_s: float = 1.0, resolve_names: NameResolver | None = None) -> None:
        self.interval_s = interval_s
        self.resolve_names = resolve_names
        self._lock = threading.Lock()
        self._incoming: dict[int, dict[str, Any]] = {}
        self._state: dict[int, dict[str, Any]] = {}
        self._clients: set[_Client] = set()
        self.sent_messages = 0
        self.feeds: list[MessageFeed] = []  # typed messages sent on the same socket
        self.scope_refresh_s = SCOPE_REFRESH_S
        self.ping_every_s = PING_EVERY_S

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
            seen = False
            for elder_id, fields in incoming.items():
                if client.sees(elder_id):
                    client.pending.setdefault(elder_id, {}).update(fields)
                    seen = True
            if seen:
                client.wake.set()
        return len(incoming)

    def _show(self, client: _Client, elder_ids: set[int], now: datetime) -> None:
        """Queue the whole state of elders that just came into the client's view."""
        for elder_id in elder_ids:
            state = self._state.get(elder_id)
            if state is None:
                continue
            fields = {k: v for k, v in state.items() if k != "status_at"}
            reasons = attention_reasons(state, now)
            fields.update(attention=bool(reasons), attention_reasons=reasons)
            client.pending.setdefault(elder_id, {}).update(fields)
        if elder_ids:
            client.wake.set()

    # --- one WebSocket --------------------------------------------------------

    async def serve(
        self, websocket: WebSocket, viewer: Viewer | None = None, *, subprotocol: str | None = None
    ) -> None:
        """Serve one client until it leaves; ``viewer`` None: sees everything (in-process
        callers only: the route always passes the signed-in user's)."""
        socket = SerialSocket(websocket)
        accepts = viewer.accepts if viewer is not None else everything
        subs = [(feed, feed.subscribe(accepts)) for feed in self.feeds]
        pumps = [asyncio.create_task(feed.pump(sub, socket)) for feed, sub in subs]
        if viewer is not None:
            pumps.append(asyncio.create_task(self._keep_current(socket, viewer)))
        try:
            await self._serve(socket, viewer, subprotocol)
        finally:
            for feed, sub in subs:
                feed.unsubscribe(sub)
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _keep_current(self, socket: SerialSocket, viewer: Viewer) -> None:
        await socket.accepted.wait()
        client = next((c for c in self._clients if c.viewer is viewer), None)
        while True:
            await asyncio.sleep(self.scope_refresh_s)
            shown = await viewer.refresh()
            if shown is None:
                with contextlib.suppress(RuntimeError, OSError):
                    await socket.close(code=SIGNED_OUT, reason="session ended: sign in again")
                return
            if client is not None and shown:
                self._show(client, shown, datetime.now(UTC))

    async def _serve(
        self, websocket: SerialSocket, viewer: Viewer | None, subprotocol: str | None
    ) -> None:
        client = _Client(viewer)
        self._clients.add(client)
        await websocket.accept(subprotocol=subprotocol)
        receiver = asyncio.create_task(_drain_incoming(websocket))
        try:
            while not receiver.done():
                woken = asyncio.ensure_future(client.wake.wait())
                await asyncio.wait(
                    {woken, receiver},
                    timeout=self.ping_every_s,
                    return_when=asyncio.FIRST_COMPLETED,
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


async def _drain_incoming(websocket: WebSocket | SerialSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
