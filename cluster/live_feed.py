"""The live map across processes: newest per-elder values over PostgreSQL NOTIFY.

In one process the ingest hands each commit's newest values straight to the API's
live hub.  Once readings are stored elsewhere (``eldercare worker``s, or a separate
``eldercare ingest``), :class:`LiveAnnouncer` there merges them per elder and, at
most once per ``interval_s``, NOTIFYs them on :data:`CHANNEL` in payloads under
PostgreSQL's 8,000-byte limit; every API node's :class:`LiveListener` hands them to
its hub, which coalesces them for its dashboards as before.  Best effort by design:
a notification missed while a node reconnects is superseded by the elder's next
reading, and ``GET /api/v1/latest`` (the ``latest_state`` table) is always complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any, Final

import msgspec
import psycopg
from psycopg import sql

log = logging.getLogger("eldercare.live")
CHANNEL: Final = "eldercare_live"
PAYLOAD_MAX: Final = 7900
_TIMES: Final = ("pos_ts", "vitals_ts", "event_ts", "status_at")
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[int, dict[str, Any]])


def encode(updates: dict[int, dict[str, Any]]) -> list[str]:
    """``updates`` as JSON payloads, each under the NOTIFY limit (elders never split).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    >>> [decode(p) for p in encode({7: {"lat": 34.8, "pos_ts": t}})] == [{7: {"lat": 34.8, "pos_ts": t}}]
    True
    """
    payloads, chunk, size = [], {}, 2
    for elder, fields in updates.items():
        one = len(_ENCODER.encode({elder: fields}))
        if chunk and size + one > PAYLOAD_MAX:
            payloads.append(_ENCODER.encode(chunk).decode())
            chunk, size = {}, 2
        if one > PAYLOAD_MAX:  # cannot happen with the map's few fields; never block on it
            continue
        chunk[elder] = fields
        size += one + 1
    if chunk:
        payloads.append(_ENCODER.encode(chunk).decode())
    return payloads


def decode(payload: str) -> dict[int, dict[str, Any]]:
    updates = _DECODER.decode(payload)
    for fields in updates.values():
        for key in _TIMES:
            if isinstance(fields.get(key), str):
                fields[key] = datetime.fromisoformat(fields[key])
    return updates


class LiveAnnouncer:
    """Merges newest values and NOTIFYs them at most once per ``interval_s``."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._pending: dict[int, dict[str, Any]] = {}
        self._sent_at = float("-inf")
        self.sent = 0

    def add(self, live: dict[int, dict[str, Any]]) -> None:
        for elder, fields in live.items():
            self._pending.setdefault(elder, {}).update(fields)

    def flush_if_due(self, conn: psycopg.Connection) -> None:
        """NOTIFY what is pending (and commit) when the interval has passed."""
        now = time.monotonic()
        if not self._pending or now - self._sent_at < self.interval_s:
            return
        payloads = encode(self._pending)
        with conn.cursor() as cur:
            cur.executemany("SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in payloads])
        conn.commit()
        self._pending.clear()
        self._sent_at = now
        self.sent += len(payloads)


class LiveListener:
    """LISTENs on :data:`CHANNEL` and publishes what it hears to an API node's hub."""

    def __init__(self, database_url: str, hub: Any) -> None:
        self.database_url = database_url
        self.hub = hub
        self.heard = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, timeout: float = 10.0) -> None:
        self._task = asyncio.create_task(self._run(), name="live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self._ready.set()
                    delay = 0.5
                    async for note in conn.notifies():
                        try:
                            self.hub.publish(decode(note.payload))
                            self.heard += 1
                        except (msgspec.DecodeError, ValueError):
                            log.warning("live notification not understood; ignored")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live listener lost its connection; reconnecting")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


class CommitAnnouncer:
    """An ``IngestService.on_commit`` for a standalone ``eldercare ingest``: its commits'
    newest values reach every API node (on its own connection, in the writer thread)."""

    def __init__(self, database_url: str, interval_s: float = 1.0) -> None:
        self.database_url = database_url
        self.announcer = LiveAnnouncer(interval_s)
        self._conn: psycopg.Connection | None = None

    def __call__(self, assembled: Any) -> None:
        self.announcer.add(assembled.live)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.database_url, connect_timeout=5)
            self.announcer.flush_if_due(self._conn)
        except psycopg.OperationalError:  # the map waits; the next commit tries again
            log.warning("live updates not announced: database unavailable")
            self._conn = None
