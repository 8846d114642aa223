"""The notifier: sends what ``notify.ladder`` / ``notify.orders`` say is due, and records
every attempt.  A task in every API process; one sends at a time.

Woken at once by any alert or order change (``LISTEN eldercare_alerts`` /
``eldercare_orders``, the channels those changes are announced on) and every
``interval_s`` besides (reminders and escalation are due by the clock, not by a change).
A pass reads the unacknowledged alerts and the orders that concern someone, asks the
pure core what is due, writes the in-app notes, claims each attempt
(``INSERT ... ON CONFLICT DO NOTHING`` on notice, recipient and channel), sends the
claimed ones concurrently through apprise and records each outcome with apprise's
error text.  A failure makes the next channel due at once, so the pass runs again.

Only the node holding a PostgreSQL advisory lock on its own connection sends; when that
node dies its connection and lock go with it and another node takes over on its next
pass.  The claim keeps a send single even so.  A failing pass is logged and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from fastapi import FastAPI
from psycopg import AsyncConnection, sql

from ingest.detection_notify import CHANNEL as ALERTS_CHANNEL
from notify import apprise_sender
from notify.addresses import apprise_url
from notify.apprise_sender import Delivery
from notify.ladder import (
    DEFAULT_LADDER,
    AlertFacts,
    Attempt,
    Audience,
    Channel,
    Due,
    Person,
    Plan,
    plan,
)
from notify.message import alert_message, order_message
from notify.orders import OrderFacts, order_plan
from storage import notifications as stored
from storage.orders import CHANNEL as ORDERS_CHANNEL

log = logging.getLogger("eldercare.notify")
LEADER_KEY: Final = 0x0E1DE2_4071F1  # any constant: the one node that sends
Send = Callable[..., Awaitable[Delivery]]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def app_clock(app: FastAPI) -> Callable[[], datetime]:
    """The app's clock (``app.state.clock`` when a test injects one), read at each pass."""

    def now() -> datetime:
        clock = getattr(app.state, "clock", None)
        return clock() if clock is not None else _wall_clock()

    return now


@dataclass(frozen=True, slots=True)
class _Work:
    due: Due
    alert_id: int | None
    order_id: int | None
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Sent:
    notice: str
    recipient: str
    channel_kind: str
    ok: bool
    error: str | None


class Notifier:
    def __init__(
        self,
        database_url: str,
        *,
        clock: Callable[[], datetime] = _wall_clock,
        interval_s: float = 5.0,
        lookback_h: float = 6.0,
        send_timeout_s: float = 15.0,
        stale_s: float = 120.0,
        concurrency: int = 8,
        send: Send = apprise_sender.send,
        email_via: str | None = None,
        sms_via: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.clock = clock
        self.interval_s = interval_s
        self.lookback_h = lookback_h
        self.send_timeout_s = send_timeout_s
        self.stale_s = stale_s
        self.send = send
        self.email_via = email_via
        self.sms_via = sms_via
        self.passes = 0
        self._limit = asyncio.Semaphore(concurrency)
        self._conn: AsyncConnection | None = None
        self._leader = False
        self._inboxed: set[tuple[int, str]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- waking ------------------------------------------------------------------------

    def poke(self) -> None:
        """Run a pass now.  Any thread."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: shutting down
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(), name="notifier-listen")
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.tick()
                    if any(not s.ok for s in sent):
                        self._wake.set()  # the next channel is due now
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notification pass failed; retrying in %.0f s", self.interval_s)
                    await self._drop_connection()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                # that lands as the event is set, and the notifier would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._drop_connection()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            conn: AsyncConnection | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=5
                )
                for channel in (ALERTS_CHANNEL, ORDERS_CHANNEL):
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                delay = 0.5
                self.poke()  # changes made while nobody listened
                async for _ in conn.notifies():
                    self.poke()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("notifier lost its LISTEN connection; reconnecting", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def _connection(self) -> AsyncConnection:
        # Autocommit: each claim is committed before its send, each outcome after it.
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True, connect_timeout=5
            )
            self._leader = False
        return self._conn

    async def _drop_connection(self) -> None:
        self._leader = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    # --- one pass --------------------------------------------------------------------------

    async def tick(self) -> list[Sent]:
        """One pass at ``clock()``; return what was sent (nothing when another node sends)."""
        conn = await self._connection()
        if not self._leader:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,))
            row = await cur.fetchone()
            self._leader = bool(row and row[0])
            if not self._leader:
                return []
        self.passes += 1
        now = self.clock()
        work = await self._due(conn, now)
        claimed: list[tuple[int, _Work]] = []
        for w in work:
            target = apprise_sender.redact(w.due.channel.url)
            attempt_id = await stored.claim(
                conn, w.due, alert_id=w.alert_id, order_id=w.order_id, target=target, now=now
            )
            if attempt_id is not None:
                claimed.append((attempt_id, w))
        results = await asyncio.gather(*(self._send(w) for _, w in claimed))
        sent = []
        for (attempt_id, w), result in zip(claimed, results, strict=True):
            await stored.finish(conn, attempt_id, result, self.clock())
            if not result.ok:
                log.warning(
                    "%s to %s by %s failed: %s",
                    w.due.notice,
                    w.due.person.key,
                    w.due.channel.kind,
                    result.error,
                )
            sent.append(
                Sent(w.due.notice, w.due.person.key, w.due.channel.kind, result.ok, result.error)
            )
        return sent

    async def _send(self, w: _Work) -> Delivery:
        async with self._limit:
            return await self.send(
                w.due.channel.url, w.title, w.body, timeout_s=self.send_timeout_s
            )

    async def _due(self, conn: AsyncConnection, now: datetime) -> list[_Work]:
        since = now - timedelta(hours=self.lookback_h)
        alerts = await stored.open_alerts(conn, since)
        orders = await stored.orders_to_notify(conn, since)
        cids = {r["community_id"] for r in (*alerts, *orders) if r["community_id"] is not None}
        ladders = await stored.ladders(conn, cids)
        roster = await stored.on_duty(conn, cids, now)
        contacts = await stored.emergency_contacts(conn, cids)
        family = await stored.family_of(conn, {a["elder_id"] for a in alerts})
        uids = [u for ids in (*roster.values(), *family.values()) for u in ids]
        uids += [o["caregiver_user"] for o in orders if o["caregiver_user"] is not None]
        persons = {u: self._reachable(p) for u, p in (await stored.people(conn, uids)).items()}
        prior: dict[str, list[Attempt]] = {}
        for a in await stored.attempts(
            conn, alert_ids=[a["id"] for a in alerts], order_ids=[o["id"] for o in orders]
        ):
            prior.setdefault(a.notice.split("/", 1)[0], []).append(a)

        def staff(cid: int | None, audience: Audience) -> list[Person]:
            return [persons[u] for u in roster.get((cid or 0, audience), []) if u in persons]

        work: list[_Work] = []
        for a in alerts:
            cid = a["community_id"]
            emergency = stored.emergency_person(cid, contacts.get(cid)) if cid else None
            emergency = self._reachable(emergency) if emergency else None
            people = {
                Audience.DUTY: staff(cid, Audience.DUTY),
                Audience.SUPERVISOR: staff(cid, Audience.SUPERVISOR),
                Audience.FAMILY: [
                    persons[u] for u in family.get(a["elder_id"], []) if u in persons
                ],
                Audience.EMERGENCY: [emergency] if emergency else [],
            }
            facts = AlertFacts(a["id"], a["severity"], a["opened_at"], a["state"])
            p = plan(
                facts,
                ladders.get(cid, DEFAULT_LADDER),
                people,
                prior.get(f"alert:{a['id']}", []),
                now,
                stale_s=self.stale_s,
            )
            await self._inbox(conn, p, a, now, alert_id=a["id"], order_id=None)
            for d in p.due:
                title, body = alert_message(a, d.step, d.round)
                work.append(_Work(d, a["id"], None, title, body))
        for o in orders:
            cid = o["community_id"]
            caregiver = persons.get(o["caregiver_user"]) if o["caregiver_user"] else None
            facts = OrderFacts(o["id"], o["kind"], o["state"], o["assign_step"], o["unstaffed"])
            p = order_plan(
                facts,
                caregiver,
                staff(cid, Audience.DUTY),
                staff(cid, Audience.SUPERVISOR),
                prior.get(f"order:{o['id']}", []),
                now,
                stale_s=self.stale_s,
            )
            await self._inbox(conn, p, o, now, alert_id=None, order_id=o["id"])
            for d in p.due:
                title, body = order_message(o, d.step)
                work.append(_Work(d, None, o["id"], title, body))
        return work

    def _reachable(self, person: Person) -> Person:
        """``person`` with each channel as an apprise URL; ones that cannot be sent to
        (an e-mail address with no mail server configured) are left out."""
        channels = []
        for c in person.channels:
            url = apprise_url(c.kind, c.url, email_via=self.email_via, sms_via=self.sms_via)
            if url is not None:
                channels.append(Channel(c.kind, url))
        return replace(person, channels=tuple(channels))

    async def _inbox(
        self,
        conn: AsyncConnection,
        p: Plan,
        subject: dict[str, Any],
        now: datetime,
        *,
        alert_id: int | None,
        order_id: int | None,
    ) -> None:
        for note in p.inbox:
            if (note.user_id, note.notice) in self._inboxed:
                continue
            if alert_id is not None:
                title, body = alert_message(subject, note.step, 0)
            else:
                title, body = order_message(subject, note.step)
            await stored.add_to_inbox(
                conn, note, alert_id=alert_id, order_id=order_id, title=title, body=body, now=now
            )
            self._inboxed.add((note.user_id, note.notice))
            if len(self._inboxed) > 100_000:  # a memo, not a record: the unique key is
                self._inboxed.clear()


def start(app: FastAPI, database_url: str) -> asyncio.Task[None] | None:
    """Start the notifier in the app's lifespan (None when ``notify_enabled`` is off)."""
    settings = app.state.settings
    if not settings.notify_enabled:
        app.state.notifier = None
        return None
    notifier = Notifier(
        database_url,
        clock=app_clock(app),
        interval_s=settings.notify_tick_s,
        lookback_h=settings.notify_lookback_h,
        send_timeout_s=settings.notify_send_timeout_s,
        email_via=_secret(settings.notify_email_via),
        sms_via=_secret(settings.notify_sms_via),
    )
    app.state.notifier = notifier
    return asyncio.create_task(notifier.run(), name="notifier")


def _secret(value: Any) -> str | None:
    """A secret setting's text; blank (``ELDERCARE_NOTIFY_SMS_VIA=``) is none."""
    return None if value is None else (value.get_secret_value().strip() or None)


async def stop(task: asyncio.Task[None] | None, *, grace_s: float = 10.0) -> None:
    """Cancel the notifier; a send stuck past ``grace_s`` must not hold up the shutdown."""
    if task is not None:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            log.warning("notifier did not stop within %.0f s; leaving it", grace_s)
