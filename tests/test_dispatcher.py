"""The 六助 dispatcher against the real database, on an injected clock: 助急 offered at
once, unanswered offers passed on, escalation, late alerts, schedules released once,
device service requests, and the running task woken by a new order."""

from __future__ import annotations

import asyncio
import time as wall
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection

from api.app import create_app
from api.dispatcher import Dispatcher
from conftest import as_admin, test_settings
from orders.lifecycle import SYSTEM, Actor, OrderState
from orders.schedule import SHANGHAI
from storage import caregivers as cg
from storage import orders as store
from storage import service_plans as plans
from storage.orders import OrderRecord

T = TypeVar("T")
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
HOME = (34.867, 110.447)
STAFF = Actor("staff", 1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, **delta: float) -> datetime:
        self.now = T0 + timedelta(**delta)
        return self.now


@pytest.fixture
def url(database_url: str, db: psycopg.Connection) -> Iterator[str]:
    db.execute("TRUNCATE caregivers, dispatcher_marks RESTART IDENTITY CASCADE")
    db.commit()
    yield database_url


def scenario(
    url: str, clock: Clock, body: Callable[[Dispatcher, AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``body`` with a dispatcher on ``clock`` and an autocommit connection."""
    pushed: list[Any] = []

    async def go() -> T:
        d = Dispatcher(url, clock=clock, publish_order=pushed.append, publish_alert=pushed.append)
        d.pushed = pushed  # type: ignore[attr-defined]
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            try:
                return await body(d, conn)
            finally:
                await d.close()

    return asyncio.run(go())


def elder(db: psycopg.Connection, name: str = "张桂英") -> int:
    row = db.execute(
        "INSERT INTO elders (name, home_lat, home_lon) VALUES (%s, %s, %s) RETURNING id",
        (name, *HOME),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


async def caregiver(
    conn: AsyncConnection,
    name: str,
    skills: list[str],
    north_m: float,
    *,
    on_shift: bool = True,
) -> int:
    c = await cg.create_caregiver(conn, {"name": name, "skills": skills}, T0)
    start = T0 - timedelta(hours=2) if on_shift else T0 + timedelta(hours=20)
    await cg.add_shift(conn, c["id"], start, start + timedelta(hours=8))
    await cg.record_position(conn, c["id"], HOME[0] + north_m / 111_320, HOME[1], 10.0, T0, T0)
    return int(c["id"])


async def order(conn: AsyncConnection, elder_id: int, kind: str = "emergency") -> OrderRecord:
    rec, _ = await store.create_order(conn, elder_id=elder_id, kind=kind, actor=STAFF, at=T0)
    return rec


def actions(rec: OrderRecord) -> list[tuple[str, int | None]]:
    return [(s["action"], s["caregiver_id"]) for s in rec.steps]


def test_an_emergency_is_offered_at_once_to_the_nearest_first_aider_on_shift(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    clock = Clock(T0)

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        await caregiver(conn, "赵离岗", ["first_aid"], 20, on_shift=False)
        near = await caregiver(conn, "王秀兰", ["first_aid"], 150)
        await caregiver(conn, "李建国", ["first_aid"], 900)
        await caregiver(conn, "张厨师", ["meal_delivery"], 10)
        rec = await order(conn, e)
        done = await d.tick()
        return near, rec, done, await store.get_order(conn, rec.id), d.pushed  # type: ignore[attr-defined]

    near, rec, done, after, pushed = scenario(url, clock, body)
    assert done.assigned == [(rec.id, near)]
    assert after.state is OrderState.ASSIGNED and after.row["caregiver_id"] == near
    detail = after.steps[-1]["detail"]
    assert 140 < detail["distance_m"] < 160
    assert detail["funnel"] == {
        "total": 4,
        "qualified": 3,
        "on_shift": 2,
        "not_declined": 2,
        "with_room": 2,
    }
    assert any(isinstance(p, OrderRecord) and p.id == rec.id for p in pushed)


def test_an_offer_not_accepted_in_time_goes_to_the_next_caregiver(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    clock = Clock(T0)

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        near = await caregiver(conn, "王秀兰", ["first_aid"], 150)
        far = await caregiver(conn, "李建国", ["first_aid"], 900)
        rec = await order(conn, e)
        await d.tick()
        clock.at(seconds=44)
        early = await d.tick()
        clock.at(seconds=45)
        late = await d.tick()
        return near, far, early, late, await store.get_order(conn, rec.id)

    near, far, early, late, after = scenario(url, clock, body)
    assert early.expired == [] and early.assigned == []
    assert late.expired == [after.id] and late.assigned == [(after.id, far)]
    assert actions(after) == [
        ("request", None),
        ("assign", near),
        ("expire", near),
        ("assign", far),
    ]
    assert after.row["declined_by"] == [near] and after.state is OrderState.ASSIGNED


def test_an_emergency_nobody_accepts_is_escalated_level_by_level_and_alerted(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    clock = Clock(T0)

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        await caregiver(conn, "王秀兰", ["first_aid"], 150)
        rec = await order(conn, e)
        for s in (0, 45, 60, 119):
            clock.at(seconds=s)
            await d.tick()
        before = await store.get_order(conn, rec.id)
        clock.at(minutes=2)
        first = await d.tick()
        again = await d.tick()  # nothing twice
        clock.at(minutes=5)
        second = await d.tick()
        return rec, before, first, again, second, await store.get_order(conn, rec.id)

    rec, before, first, again, second, after = scenario(url, clock, body)
    assert before.row["escalation_level"] == 0
    assert before.row["dispatch_note"]["reason"] == "all_declined"  # the only one let it lapse
    assert first.escalated == [(rec.id, 1)] and first.late == [(rec.id, "accept_late")]
    assert again.escalated == [] and again.late == []
    assert second.escalated == [(rec.id, 2)]
    levels = [s["detail"]["level"] for s in after.steps if s["action"] == "escalate"]
    assert levels == [1, 2] and after.row["escalation_level"] == 2
    alerts = db.execute(
        "SELECT kind, severity, detail->>'order_id' FROM alerts WHERE elder_id = %s ORDER BY id",
        (e,),
    ).fetchall()
    assert alerts == [
        ("service_late", "critical", str(rec.id)),
        ("service_escalation", "critical", str(rec.id)),
    ]
    # A late 助急 must not order another 助急.
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (1,)


def test_a_widened_emergency_may_go_to_a_caregiver_at_full_load(
    url: str, db: psycopg.Connection
) -> None:
    e, other = elder(db), elder(db, "李淑珍")
    clock = Clock(T0)

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        wang = await caregiver(conn, "王秀兰", ["first_aid", "meal_delivery"], 150)
        await cg.update_caregiver(conn, wang, {"max_load": 1}, T0)
        meal = await order(conn, other, "meal")
        await store.apply_step(conn, meal.id, "assign", SYSTEM, T0, caregiver_id=wang)
        sos = await order(conn, e)
        busy = await d.tick()
        clock.at(minutes=1, seconds=59)
        still = await d.tick()
        clock.at(minutes=2)
        return wang, sos, busy, still, await d.tick()

    wang, sos, busy, still, widened = scenario(url, clock, body)
    assert busy.unassigned == still.unassigned == {sos.id: "all_at_capacity"}
    assert widened.escalated == [(sos.id, 1)] and widened.assigned == [(sos.id, wang)]


def test_a_booked_order_is_offered_only_from_its_release_lead(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    clock = Clock(T0)
    lunch = T0 + timedelta(days=1, hours=1, minutes=30)  # tomorrow 11:30 local

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        cook = await cg.create_caregiver(conn, {"name": "张厨师", "skills": ["meal_delivery"]}, T0)
        await cg.add_shift(conn, cook["id"], T0, T0 + timedelta(days=2))
        rec, _ = await store.create_order(
            conn, elder_id=e, kind="meal", actor=STAFF, at=T0, due_at=lunch
        )
        today = await d.tick()
        clock.now = lunch - timedelta(minutes=91)
        before = await d.tick()
        clock.now = lunch - timedelta(minutes=90)
        then = await d.tick()
        return rec, cook["id"], today, before, then

    rec, cook, today, before, then = scenario(url, clock, body)
    assert today.assigned == [] and before.assigned == [] and before.unassigned == {}
    assert then.assigned == [(rec.id, cook)]


def test_a_missed_target_raises_one_staff_alert_per_breach(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    clock = Clock(T0)

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        rec = await order(conn, e, "meal")  # nobody delivers meals today
        clock.at(minutes=29)
        quiet = await d.tick()
        clock.at(minutes=30)
        accept = await d.tick()
        await d.tick()
        clock.at(minutes=60)
        arrive = await d.tick()
        return rec, quiet, accept, arrive, await store.get_order(conn, rec.id), d.pushed  # type: ignore[attr-defined]

    rec, quiet, accept, arrive, after, pushed = scenario(url, clock, body)
    assert quiet.late == [] and quiet.unassigned == {rec.id: "nobody_qualified"}
    assert accept.late == [(rec.id, "accept_late")] and arrive.late == [(rec.id, "arrive_late")]
    assert after.row["breaches_alerted"] == ["accept_late", "arrive_late"]
    (alert,) = db.execute(
        "SELECT kind, severity, count, message FROM alerts WHERE elder_id = %s", (e,)
    ).fetchall()
    assert alert[:3] == ("service_late", "medium", 2)  # one episode, repeated
    assert "助餐" in alert[3]
    assert any(isinstance(p, dict) and p.get("kind") == "service_late" for p in pushed)


def test_schedules_across_days_and_a_month_boundary_are_released_once(
    url: str, db: psycopg.Connection
) -> None:
    a, b = elder(db), elder(db, "李淑珍")
    start = datetime(2026, 1, 30, 0, 0, tzinfo=SHANGHAI)  # Friday, the month's last weekday
    clock = Clock(start)

    async def body(d: Dispatcher, conn: AsyncConnection) -> list[tuple[Any, ...]]:
        await plans.create_schedule(conn, a, "meal", "mon-fri", time(11, 30), date(2026, 1, 1))
        # 07:00 in Shanghai is 23:00 UTC the day before: the UTC day is not the local one.
        await plans.create_schedule(conn, b, "meal", "sat-sun", time(7, 0), date(2026, 1, 1))
        other = Dispatcher(url, clock=clock)  # a second node doing the same
        t = start
        while t <= datetime(2026, 2, 2, 12, 0, tzinfo=SHANGHAI):
            clock.now = t
            await d.release_schedules(conn, t)
            await d.release_schedules(conn, t)
            await other.release_schedules(conn, t)
            t += timedelta(minutes=20)
        cur = await conn.execute(
            "SELECT elder_id, due_at, requested_at, source, source_ref FROM orders ORDER BY due_at"
        )
        return list(await cur.fetchall())

    rows = scenario(url, clock, body)
    local = [(e, due.astimezone(SHANGHAI).strftime("%a %m-%d %H:%M")) for e, due, *_ in rows]
    assert local == [
        (a, "Fri 01-30 11:30"),
        (b, "Sat 01-31 07:00"),
        (b, "Sun 02-01 07:00"),
        (a, "Mon 02-02 11:30"),
    ]
    for _, due, requested, source, ref in rows:
        # Released the meal's lead (90 min) ahead, at the first pass after that.
        assert timedelta(minutes=70) <= due - requested <= timedelta(minutes=90)
        assert source == "schedule" and ref.startswith("schedule:")


def _service_event(db: psycopg.Connection, device: str, seq: int, kind: str | None) -> None:
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO device_events (ts, device_id, seq, elder_id, type, kind, received_at)"
        " SELECT %s, %s, %s, elder_id, 'service', %s, %s FROM devices WHERE id = %s",
        (now - timedelta(seconds=5), device, seq, kind, now, device),
    )
    db.commit()


def test_a_device_service_request_becomes_one_order(url: str, db: psycopg.Connection) -> None:
    e = elder(db)
    device = f"w-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO devices (id, elder_id) VALUES (%s, %s)", (device, e))
    db.commit()
    _service_event(db, device, 7, "meal")
    _service_event(db, device, 8, None)
    clock = Clock(datetime.now(UTC))

    async def body(d: Dispatcher, conn: AsyncConnection) -> tuple[Any, ...]:
        first = await d.tick()
        second = await d.tick()
        restarted = await Dispatcher(url, clock=clock).import_service_events(conn, clock())
        items, _ = await store.list_orders(conn, elder_id=e)
        return first, second, restarted, items

    first, second, restarted, items = scenario(url, clock, body)
    assert len(first.from_events) == 2 and second.from_events == [] and restarted == []
    by_kind = {r.order.kind.value: r for r in items}
    assert set(by_kind) == {"meal", "mobility"}
    meal = by_kind["meal"]
    assert meal.row["source"] == "elder" and meal.steps[0]["actor_role"] == "elder"
    assert meal.row["source_ref"].startswith(f"event:{device}:7:")
    assert "回电" in by_kind["mobility"].row["notes"]  # no kind: staff call back to ask


def test_a_new_order_wakes_the_running_dispatcher_and_reaches_the_dashboards(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    with TestClient(create_app(test_settings(), url)) as client:
        app: Any = client.app

        async def setup() -> int:
            async with await AsyncConnection.connect(url) as conn:
                now = datetime.now(UTC)
                c = await cg.create_caregiver(
                    conn, {"name": "王秀兰", "skills": ["first_aid"]}, now
                )
                await cg.add_shift(conn, c["id"], now - timedelta(hours=1), None)
                await conn.commit()
                return int(c["id"])

        wang = asyncio.run(setup())
        app.state.dispatcher.interval_s = 60.0  # from the next wait on: only a poke wakes it
        wall.sleep(3.5)
        with as_admin(client, url).websocket_connect("/ws/live") as ws:
            wall.sleep(0.3)

            async def ask() -> int:
                async with await AsyncConnection.connect(url) as conn:
                    rec, _ = await store.create_order(
                        conn, elder_id=e, kind="emergency", actor=STAFF, at=datetime.now(UTC)
                    )
                    await conn.commit()
                    return rec.id

            started = wall.monotonic()
            order_id = asyncio.run(ask())
            while True:
                msg = ws.receive_json()
                if msg.get("type") == "order" and msg["order"]["state"] == "assigned":
                    break
            waited = wall.monotonic() - started

            async def elsewhere() -> None:  # what another API node does, on its own connection
                async with await AsyncConnection.connect(url) as conn:
                    now = datetime.now(UTC)
                    await cg.record_position(conn, wang, 34.8675, 110.447, 8.0, now, now)
                    await store.apply_step(conn, order_id, "cancel", STAFF, now)
                    await conn.commit()

            asyncio.run(elsewhere())
            heard: dict[str, Any] = {}
            while len(heard) < 2:
                m = ws.receive_json()
                if m.get("type") == "caregiver" and m["caregiver"]["id"] == wang:
                    heard["caregiver"] = m["caregiver"]
                elif m.get("type") == "order" and m["order"]["state"] == "cancelled":
                    heard["order"] = m["order"]
        assert msg["order"]["id"] == order_id and msg["order"]["caregiver_id"] == wang
        assert msg["order"]["kind_zh"] == "助急" and msg["order"]["caregiver_name"] == "王秀兰"
        assert msg["order"]["deadlines"]["accept_by"] is not None
        # Woken by the new order (NOTIFY on commit), not by the timer.
        assert waited < 5
        # Changes made on another node reach this node's dashboards too.
        assert heard["caregiver"]["lat"] == 34.8675 and heard["caregiver"]["on_shift"] is True
        assert heard["order"]["id"] == order_id and heard["order"]["caregiver_id"] is not None
