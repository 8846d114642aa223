"""Alerts pushed to every dashboard on the live WebSocket, as they happen.

:class:`AlertingHub` is the live hub plus :meth:`~AlertingHub.publish_alert`: each
``/ws/live`` client also receives ``{"type": "alert", "alert": Alert}`` messages,
sent at once (not on the map's coalescing interval).  ``publish_alert`` may be called
from any thread (the API's routes, the escalator).  Per client, pending alerts are
keyed by id: a slow client gets each alert's newest version once, never a backlog of
its intermediate states.

Across processes, PostgreSQL NOTIFY (:mod:`ingest.detection_notify`):
:class:`AlertListener` LISTENs on a dedicated connection and pushes what it hears --
the detection process's alerts, and the other API nodes' acknowledges, resolves and
escalations, which each node relays after pushing them to its own dashboards.  A node
hears its own relays too; the feed sends each version of an alert once.

The fan-out itself is :class:`api.feed.MessageFeed`, shared with the order feed; each
client receives only the alerts of the elders its user's scope reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from api.alert_models import AlertPublic
from api.feed import MessageFeed
from api.live import LiveHub
from ingest.detection_notify import CHANNEL, announce_async, decode_payload
from storage import alerts as stored_alerts
from storage.registry import NotFound

_ENCODE = msgspec.json.Encoder()
log = logging.getLogger("eldercare.alerts")
CATCH_UP_MARGIN = timedelta(seconds=60)  # writers' clocks may differ by this much
CATCH_UP_MAX = 1000


class AlertFeed(MessageFeed):
    """The feed of ``{"type": "alert", "alert": Alert}`` messages."""

    def publish_alert(self, alert: dict[str, Any]) -> bool:
        """Queue ``alert`` (a storage Alert dict) for every subscriber.  Any thread.

        The same version of an alert arriving twice (pushed by this node and then heard
        back on the NOTIFY channel) is sent once; return whether it was queued.
        """
        try:  # through the API's model: the pushed alert is the REST one, key for key
            body = AlertPublic.model_validate(alert).model_dump(mode="json")
        except ValueError:  # a push must never break the caller (the ingest thread)
            log.exception("alert not pushed: not in the Alert shape")
            return False
        return self.publish("alert", body, _ENCODE.encode(body))


class AlertingHub(LiveHub):
    """The live hub, whose clients also receive alert messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alerts = AlertFeed()
        self.feeds.append(self.alerts)
        # Tells the other API nodes (set by the NOTIFY listener, api.alert_listener).
        self.relay: Callable[[dict[str, Any]], None] | None = None

    def publish_alert(self, alert: dict[str, Any]) -> None:
        """Push ``{"type": "alert", "alert": alert}`` to every dashboard that may see it,
        this node's at once and the other nodes' through the relay.  Any thread."""
        if self.alerts.publish_alert(alert) and self.relay is not None:
            self.relay(alert)

    def push_heard(self, alert: dict[str, Any]) -> None:
        """An alert change heard from elsewhere: to this node's dashboards only."""
        self.alerts.publish_alert(alert)


class AlertListener:
    """LISTENs for alert changes on a dedicated connection and pushes them to ``hub``;
    relays the hub's own publishes to the other nodes through ``pool``.

    A lost connection is re-established with backoff; the alerts changed meanwhile are
    read back from the database (with a margin for clock skew between writers), so a
    database restart costs a dashboard a late message, not a missing one.
    """

    def __init__(
        self,
        database_url: str,
        hub: AlertingHub,
        pool: AsyncConnectionPool,
        *,
        retry_max_s: float = 5.0,
    ) -> None:
        self.database_url = database_url
        self.hub = hub
        self.pool = pool
        self.retry_max_s = retry_max_s
        self.heard = 0
        self._conn: psycopg.AsyncConnection | None = None
        self._lost_at: datetime | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """LISTEN before returning (so nothing committed after start-up is missed), then
        keep listening and relaying in tasks of the running loop."""
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        try:
            self._conn = await self._listen()
        except psycopg.OperationalError:
            log.exception("cannot LISTEN for alerts yet; retrying in the background")
            self._lost_at = datetime.now(UTC)
        self.hub.relay = self.relay
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="alert-listener"),
            asyncio.create_task(self._relay_loop(), name="alert-relay"),
        ]

    async def stop(self) -> None:
        self.hub.relay = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None:
            await self._conn.close()

    def relay(self, alert: dict[str, Any]) -> None:
        """Announce ``alert`` to the other nodes.  Any thread."""
        if self._loop is not None and self._outbox is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._outbox.put_nowait, alert)

    async def _listen(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, connect_timeout=5
        )
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        return conn

    async def _listen_loop(self) -> None:
        delay = 0.5
        while True:
            try:
                if self._conn is None:
                    self._conn = await self._listen()
                    await self._catch_up()
                delay = 0.5
                async for note in self._conn.notifies():
                    await self._heard(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert listener lost its connection; reconnecting")
                if self._lost_at is None:
                    self._lost_at = datetime.now(UTC)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    async def _heard(self, payload: str) -> None:
        try:
            body = decode_payload(payload)
        except (ValueError, msgspec.DecodeError):
            log.warning("ignored a notification not in the alert shape: %.200s", payload)
            return
        self.heard += 1
        if isinstance(body, int):  # too long to travel whole: read it
            async with self.pool.connection() as conn:
                try:
                    body = await stored_alerts.get_alert(conn, body)
                except NotFound:
                    return
        self.hub.push_heard(body)

    async def _catch_up(self) -> None:
        """Push the alerts changed while nobody listened."""
        if self._lost_at is None:
            return
        since, self._lost_at = self._lost_at - CATCH_UP_MARGIN, None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM alerts WHERE updated_at >= %s ORDER BY updated_at LIMIT %s",
                (since, CATCH_UP_MAX),
            )
            for (alert_id,) in await cur.fetchall():
                with contextlib.suppress(NotFound):
                    self.hub.push_heard(await stored_alerts.get_alert(conn, alert_id))

    async def _relay_loop(self) -> None:
        assert self._outbox is not None
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self.pool.connection() as conn:
                    await announce_async(conn, batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the other nodes miss a push; their REST reads stay right
                log.exception("could not relay %d alert change(s) to the other nodes", len(batch))
