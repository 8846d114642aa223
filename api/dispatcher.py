"""The 六助 dispatcher: the shell that keeps orders moving without a person.

A background task in the serve process.  Every ``interval_s``, and at once when an
order comes to await dispatch anywhere (every order change is announced by ``NOTIFY
eldercare_orders`` from its transaction; :meth:`Dispatcher.poke` does the same in
process), one pass:

1. releases recurring schedules whose release time has come (``orders.schedule``);
   each release is an order with ``source_ref = schedule:<rule>:<booked time>``, so
   running twice, or on two nodes, makes it once;
2. turns device ``service`` events into orders (``source_ref = event:<device>:<seq>:<ts>``),
   polling ``device_events`` by arrival with an overlap behind a stored mark, so a
   restart neither misses nor repeats one;
3. expires offers not answered in time (``orders.targets.offer_expired``);
4. records the 助急 escalation levels now due (``escalations_due``) and raises a staff
   alert for every missed target (``breaches``), each once, in ``order_steps`` and the
   alert list (kind ``service_late`` / ``service_escalation``).  From level 1 (widen)
   a 助急 may go to a caregiver at their maximum load; level 2 (outside) is an alert:
   call 120 and the family;
5. offers every order awaiting dispatch to the caregiver ``orders.dispatch.choose``
   picks from the roster in the database (or notes why nobody could be found); a
   booked order from its kind's release lead before the booked time.

Every change is one transaction guarded by the order's version, so two dispatchers
(or a dispatcher and a person) never both win; the loser re-reads next pass.  The
clock is injected.  A failing pass is logged and retried on the next one.  What is
heard on the channel is also pushed to this node's dashboards, so changes made on
another node reach them (the hub drops versions it has already sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection

from alerts.core import Finding, Severity
from alerts.seams import NoOrders
from orders.catalogue import CATALOGUE, ServiceKind
from orders.dispatch import Caregiver, Decision, choose
from orders.lifecycle import AWAITING_DISPATCH, SYSTEM, Action, Actor, Source
from orders.schedule import releases
from orders.targets import Level, breaches, escalations_due, offer_expired
from storage import alerts as stored_alerts
from storage import caregivers as stored_caregivers
from storage import dispatcher_inbox as inbox
from storage import orders as stored
from storage import service_plans as stored_plans
from storage.orders import CHANNEL, OrderConflict, OrderRecord
from storage.registry import NotFound

log = logging.getLogger("eldercare.dispatcher")
AWAITING: Final = frozenset(s.value for s in AWAITING_DISPATCH)
EVENTS_MARK: Final = "service_events"
EVENTS_OVERLAP: Final = timedelta(minutes=10)  # ingest commits can lag their arrival time
# The longest release lead in the catalogue: releases are looked for this far back.
RELEASE_LOOKBACK: Final = max(s.release_lead for s in CATALOGUE.values() if not s.urgent)
# A device `service` press without a kind: the least specialised visit; the note tells
# staff to call and ask what is needed.
UNSPECIFIED_KIND: Final = ServiceKind.MOBILITY

PublishOrder = Callable[[OrderRecord], None]
PublishAlert = Callable[[dict[str, Any]], None]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _ignore(_: Any) -> None:
    return None


@dataclass
class Pass:
    """What one pass did (for tests and logs)."""

    released: list[int] = field(default_factory=list)
    from_events: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    assigned: list[tuple[int, int]] = field(default_factory=list)  # (order, caregiver)
    unassigned: dict[int, str] = field(default_factory=dict)  # order -> reason
    escalated: list[tuple[int, int]] = field(default_factory=list)  # (order, level)
    late: list[tuple[int, str]] = field(default_factory=list)  # (order, breach kind)


@dataclass(frozen=True, slots=True)
class _Note:
    """A system note for ``order_steps`` and the staff alert that goes with it."""

    order_id: int
    elder_id: int
    action: str  # escalate / late
    detail: dict[str, Any]
    finding: Finding | None
    escalation_level: int | None = None
    breach: str | None = None


async def dispatch_order(
    conn: AsyncConnection,
    order_id: int,
    now: datetime,
    *,
    actor: Actor = SYSTEM,
    roster: list[Caregiver] | None = None,
) -> tuple[OrderRecord, Decision]:
    """Choose a caregiver for one order awaiting dispatch and offer it to them.

    Returns the order after (``assigned``) and the decision; when nobody is eligible the
    order is unchanged, the decision's ``reason`` and ``funnel`` say why (and are kept
    as the order's ``dispatch_note``).  Raises NotFound, OrderConflict (409: the order
    is not awaiting dispatch, or changed meanwhile).  ``conn`` should be idle or
    autocommit for the step to commit here.
    """
    rec = await stored.get_order(conn, order_id)
    if not stored.awaiting_dispatch(rec):
        raise OrderConflict(rec.state, Action.ASSIGN, rec.version)
    staff = roster if roster is not None else await stored_caregivers.roster(conn, now)
    if rec.row["escalation_level"] >= Level.WIDEN:
        # Widened: a 助急 nobody took in time may go to a caregiver already at their
        # maximum load -- an emergency comes before a meal round.
        staff = [replace(c, max_load=max(c.max_load, c.active_orders + 1)) for c in staff]
    where = rec.elder_position(now) or (math.nan, math.nan)
    decision = choose(rec.order, where, staff, now)
    if decision.caregiver_id is None:
        note = {
            "reason": decision.reason.value,
            "funnel": _funnel(decision),
            "at": now.isoformat(),
        }
        if (rec.row["dispatch_note"] or {}).get("reason") != note["reason"]:
            await stored.set_dispatch_note(conn, order_id, note)
            rec = await stored.get_order(conn, order_id)
        return rec, decision
    best = decision.ranked[0]
    detail = {
        "distance_m": None if best.distance_m is None else round(best.distance_m),
        "score_m": round(best.score_m),
        "ranked": [c.caregiver_id for c in decision.ranked],
        "funnel": _funnel(decision),
    }
    after = await stored.apply_step(
        conn,
        order_id,
        Action.ASSIGN,
        actor,
        now,
        caregiver_id=decision.caregiver_id,
        version=rec.version,
        detail=detail,
    )
    if rec.row["dispatch_note"] is not None:
        await stored.set_dispatch_note(conn, order_id, None)
    return after, decision


def _funnel(d: Decision) -> dict[str, int]:
    f = d.funnel
    return {
        "total": f.total,
        "qualified": f.qualified,
        "on_shift": f.on_shift,
        "not_declined": f.not_declined,
        "with_room": f.with_room,
    }


class Dispatcher:
    def __init__(
        self,
        database_url: str,
        *,
        publish_order: PublishOrder = _ignore,
        publish_alert: PublishAlert = _ignore,
        publish_caregiver: PublishAlert = _ignore,
        clock: Callable[[], datetime] = _wall_clock,
        interval_s: float = 3.0,
        schedule_every_s: float = 30.0,
        position_retention: timedelta = timedelta(days=400),
        max_backfill: timedelta = timedelta(hours=72),
    ) -> None:
        self.database_url = database_url
        self.publish_order = publish_order
        self.publish_alert = publish_alert
        self.publish_caregiver = publish_caregiver
        self.clock = clock
        self.interval_s = interval_s
        self.schedule_every_s = schedule_every_s
        self.position_retention = position_retention
        self.max_backfill = max_backfill
        self._conn: AsyncConnection | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_release: datetime | None = None
        self._last_trim: datetime | None = None
        self._heard_ids: set[tuple[str, int]] = set()
        self._push_wake: asyncio.Event | None = None
        self.passes = 0

    # --- waking --------------------------------------------------------------------------

    def poke(self) -> None:
        """Run a pass now (e.g. after creating an order).  Any thread."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: shutting down
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(), name="dispatcher-listen")
        try:
            while True:
                self._wake.clear()
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatch pass failed; retrying in %.0f s", self.interval_s)
                    await self._drop_connection()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                # that lands as the event is set, and shutdown would hang on this task.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._drop_connection()

    async def _listen(self) -> None:
        """Hear every order change on any node (``NOTIFY eldercare_orders``, sent on
        commit): wake for an order awaiting dispatch, push the change to this node's
        dashboards (the node that made it has pushed it already; the hub drops repeats)."""
        pusher = asyncio.create_task(self._push_heard(), name="dispatcher-push")
        try:
            while True:
                try:
                    async with await psycopg.AsyncConnection.connect(
                        self.database_url, autocommit=True
                    ) as conn:
                        await conn.execute(f"LISTEN {CHANNEL}")
                        async for n in conn.notifies():
                            self._heard(n.payload)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("order notifications lost; listening again in 5 s")
                    await asyncio.sleep(5.0)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher

    def _heard(self, payload: str) -> None:
        what, _, state = payload.partition(":")
        try:
            key = ("caregiver", int(state)) if what == "caregiver" else ("order", int(what))
        except ValueError:
            log.warning("unexpected order notification %r", payload)
            return
        if key[0] == "order" and state in AWAITING:
            self.poke()
        self._heard_ids.add(key)
        if self._push_wake is not None:
            self._push_wake.set()

    async def _push_heard(self) -> None:
        self._push_wake = asyncio.Event()
        conn: AsyncConnection | None = None
        while True:
            await self._push_wake.wait()
            self._push_wake.clear()
            batch, self._heard_ids = self._heard_ids, set()
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
                for kind, ident in sorted(batch):
                    with contextlib.suppress(NotFound):  # deleted meanwhile
                        if kind == "order":
                            self.publish_order(await stored.get_order(conn, ident))
                        else:
                            c = await stored_caregivers.get_caregiver(conn, ident, self.clock())
                            self.publish_caregiver(stored_caregivers.live_view(c))
            except asyncio.CancelledError:
                if conn is not None:
                    await conn.close()
                raise
            except Exception:
                log.exception("heard order changes not pushed")
                conn = None

    async def _connection(self) -> AsyncConnection:
        # Autocommit: every step is its own transaction, committed before it is pushed.
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._drop_connection()

    # --- one pass --------------------------------------------------------------------------

    async def tick(self) -> Pass:
        """One pass at ``clock()`` (module docstring: what it does, in order)."""
        now = self.clock()
        conn = await self._connection()
        done = Pass()
        due_release = self._last_release is None or now - self._last_release >= timedelta(
            seconds=self.schedule_every_s
        )
        if due_release:
            done.released = await self.release_schedules(conn, now)
            self._last_release = now
        done.from_events = await self.import_service_events(conn, now)
        open_orders = await stored.open_orders(conn)
        for rec in open_orders:
            if offer_expired(rec.order, now):
                after = await self._step(conn, rec, Action.EXPIRE, now, detail={"offer": "expired"})
                if after is not None:
                    done.expired.append(rec.id)
        # Targets first: a 助急 escalated now is offered more widely in this same pass.
        await self.record_targets(conn, now, done)
        await self.dispatch_waiting(conn, now, done)
        if self._last_trim is None or now - self._last_trim >= timedelta(hours=1):
            await stored_caregivers.trim_positions(conn, now - self.position_retention)
            self._last_trim = now
        self.passes += 1
        return done

    async def _step(
        self,
        conn: AsyncConnection,
        rec: OrderRecord,
        action: Action,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> OrderRecord | None:
        try:
            after = await stored.apply_step(
                conn, rec.id, action, SYSTEM, now, version=rec.version, detail=detail
            )
        except OrderConflict:
            return None  # someone acted first (the caregiver accepted at the last second)
        self.publish_order(after)
        return after

    async def release_schedules(self, conn: AsyncConnection, now: datetime) -> list[int]:
        """Create the orders of every release whose time has come and whose booked time
        has not passed; each once (its ``source_ref``).  Returns the new order ids."""
        rules = await stored_plans.weekly_rules(conn)
        due = [r for r in releases(rules, now - RELEASE_LOOKBACK, now) if r.scheduled_for >= now]
        if not due:
            return []
        refs = {_release_ref(r.rule_id, r.scheduled_for): r for r in due}
        have = await stored_plans.existing_refs(conn, list(refs))
        made = []
        for ref, r in refs.items():
            if ref in have:
                continue
            rec, created = await stored.create_order(
                conn,
                elder_id=r.elder_id,
                kind=r.kind,
                actor=SYSTEM,
                at=now,
                source=Source.SCHEDULE,
                source_ref=ref,
                due_at=r.scheduled_for,
            )
            if created:
                made.append(rec.id)
                self.publish_order(rec)
        return made

    async def import_service_events(self, conn: AsyncConnection, now: datetime) -> list[int]:
        """Orders for the device ``service`` events not yet turned into one."""
        mark = await inbox.get_mark(conn, EVENTS_MARK)
        since = (mark or now - self.max_backfill) - EVENTS_OVERLAP
        events = await inbox.service_events(conn, since, since - self.max_backfill)
        made = []
        newest = mark
        for e in events:
            newest = e["received_at"] if newest is None else max(newest, e["received_at"])
            if e["elder_id"] is None:
                continue  # an unpaired device: its events are stored, nobody to serve
            kind = e["kind"] or UNSPECIFIED_KIND
            note = (
                "设备服务键（未指明服务类型）：请回电确认需要什么 / service button without a kind:"
                " call back to ask what is needed"
                if e["kind"] is None
                else "设备服务键 / requested on the device"
            )
            try:
                rec, created = await stored.create_order(
                    conn,
                    elder_id=e["elder_id"],
                    kind=kind,
                    actor=Actor("elder", e["elder_id"]),
                    at=min(max(e["ts"], now - self.max_backfill), now),
                    source=Source.ELDER,
                    source_ref=e["source_ref"],
                    notes=note,
                )
            except Exception:
                log.exception("service event %s not turned into an order", e["source_ref"])
                continue
            if created:
                made.append(rec.id)
                self.publish_order(rec)
        if newest is not None and newest != mark:
            await inbox.set_mark(conn, EVENTS_MARK, newest)
        elif mark is None:
            await inbox.set_mark(conn, EVENTS_MARK, now - self.max_backfill)
        return made

    async def dispatch_waiting(self, conn: AsyncConnection, now: datetime, done: Pass) -> None:
        """Offer every order awaiting dispatch, 助急 first, then oldest first."""
        waiting = [
            r
            for r in await stored.open_orders(conn)
            if stored.awaiting_dispatch(r) and _ready(r, now)
        ]
        if not waiting:
            return
        waiting.sort(key=lambda r: (not CATALOGUE[r.order.kind].urgent, r.id))
        staff = await stored_caregivers.roster(conn, now)
        index = {c.id: i for i, c in enumerate(staff)}
        for rec in waiting:
            try:
                after, decision = await dispatch_order(conn, rec.id, now, roster=staff)
            except OrderConflict:
                continue
            if decision.caregiver_id is None:
                done.unassigned[rec.id] = decision.reason.value
                continue
            done.assigned.append((rec.id, decision.caregiver_id))
            self.publish_order(after)
            i = index[decision.caregiver_id]  # the next decision sees the new load
            staff[i] = replace(staff[i], active_orders=staff[i].active_orders + 1)

    async def record_targets(self, conn: AsyncConnection, now: datetime, done: Pass) -> None:
        """Escalation levels and missed targets, each recorded and raised once."""
        notes: list[_Note] = []
        for rec in await stored.open_orders(conn):
            notes += _escalations(rec, now)
            notes += _late(rec, now)
        if not notes:
            return
        recorded = await asyncio.to_thread(self._record_sync, notes, now)
        for note in recorded:
            if note.escalation_level is not None:
                done.escalated.append((note.order_id, note.escalation_level))
            if note.breach is not None:
                done.late.append((note.order_id, note.breach))
        for order_id in {n.order_id for n in recorded}:
            self.publish_order(await stored.get_order(conn, order_id))

    def _record_sync(self, notes: list[_Note], now: datetime) -> list[_Note]:
        """Each note and its alert in one transaction (the alert store is synchronous)."""
        recorded = []
        alerts: list[dict[str, Any]] = []
        with psycopg.connect(self.database_url) as conn:
            for n in notes:
                try:
                    conn.execute("SELECT 1")  # open the transaction both parts share
                    fresh = stored.record_note_sync(
                        conn,
                        n.order_id,
                        n.action,
                        now,
                        n.detail,
                        escalation_level=n.escalation_level,
                        breach=n.breach,
                    )
                    changes = []
                    if fresh and n.finding is not None:
                        changes = stored_alerts.record_findings(
                            conn, [(n.elder_id, n.finding)], now, orders=NoOrders()
                        )
                    conn.commit()
                except Exception:
                    conn.rollback()
                    log.exception("order %s: %s not recorded", n.order_id, n.action)
                    continue
                if fresh:
                    recorded.append(n)
                    alerts += [c.alert for c in changes if c.notify]
        for alert in alerts:
            try:
                self.publish_alert(alert)
            except Exception:
                log.exception("alert push failed")
        return recorded


def _ready(rec: OrderRecord, now: datetime) -> bool:
    """Whether a booked order is near enough to offer: from its kind's release lead
    before the booked time (as a schedule would release it), so that nobody is held to
    next week's order.  Staff may still dispatch it by hand earlier."""
    due = rec.order.scheduled_for
    return due is None or now >= due - CATALOGUE[rec.order.kind].release_lead


def _release_ref(rule_id: int, scheduled_for: datetime) -> str:
    return f"schedule:{rule_id}:{scheduled_for.astimezone(UTC).strftime('%Y-%m-%dT%H:%MZ')}"


_ESCALATION_ZH: Final = {
    Level.WIDEN: "助急无人接单：已扩大派单范围并通知主管",
    Level.OUTSIDE: "助急仍无人接单：请立即拨打120并联系家属",
}


def _escalations(rec: OrderRecord, now: datetime) -> list[_Note]:
    out = []
    for level in escalations_due(rec.order, now, recorded=rec.row["escalation_level"]):
        lv = Level(level)
        detail = {"level": level, "target": lv.name.lower(), "message": _ESCALATION_ZH[lv]}
        # Level 1 coincides with the accept target, already raised as service_late;
        # from level 2 staff must act outside the centre, which is its own alert.
        finding = None
        if lv >= Level.OUTSIDE:
            finding = Finding(
                "service_escalation",
                Severity.CRITICAL,
                now,
                f"{_ESCALATION_ZH[lv]}（{rec.row['elder_name']}，订单 {rec.id}）",
                value=float(level),
                detail={"order_id": rec.id, "level": level},
            )
        out.append(_Note(rec.id, rec.order.elder_id, "escalate", detail, finding, level, None))
    return out


_BREACH_ZH: Final = {
    "accept_late": "无人按时接单",
    "arrive_late": "未按时到达",
    "arrive_early": "早于约定时间到达",
}


def _late(rec: OrderRecord, now: datetime) -> list[_Note]:
    out = []
    alerted = set(rec.row["breaches_alerted"])
    for b in breaches(rec.order, now):
        if b.kind.value in alerted:
            continue
        minutes = b.by.total_seconds() / 60
        detail = {
            "breach": b.kind.value,
            "due": b.due.isoformat(),
            "late_by_s": round(b.by.total_seconds()),
        }
        finding = Finding(
            "service_late",
            b.severity,
            min(now, b.due),
            f"{b.service.zh}订单 {rec.id}（{rec.row['elder_name']}）{_BREACH_ZH[b.kind.value]}，"
            f"超时 {minutes:.0f} 分钟",
            value=round(minutes, 1),
            detail={"order_id": rec.id, "breach": b.kind.value, "service": b.service.value},
        )
        out.append(_Note(rec.id, rec.order.elder_id, "late", detail, finding, None, b.kind.value))
    return out
