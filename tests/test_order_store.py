"""六助 orders in the real database: lifecycle, idempotency, races, caregivers, plans,
schedules, and the 助急 order a critical alert creates in its own transaction."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import AsyncConnection

from alerts.core import Finding, Severity
from orders.lifecycle import SYSTEM, Actor, NotPermitted, OrderState
from orders.plans import BASIC_100, Month
from orders.schedule import SHANGHAI
from storage import caregivers as cg
from storage import orders as store
from storage import service_plans as plans
from storage.alerts import record_findings
from storage.orders import OrderConflict
from storage.registry import NotFound

T = TypeVar("T")
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
STAFF = Actor("staff", 1)
FAMILY = Actor("family", 31)
HOME = (34.867, 110.447)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def url(database_url: str, db: psycopg.Connection) -> Iterator[str]:
    """The session database with no orders, caregivers or marks left from other tests."""
    db.execute("TRUNCATE caregivers, dispatcher_marks RESTART IDENTITY CASCADE")
    db.commit()
    yield database_url


def run(url: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await AsyncConnection.connect(url) as conn:
            out = await work(conn)
            await conn.commit()
            return out

    return asyncio.run(go())


def elder(db: psycopg.Connection, name: str = "张桂英", home: tuple[float, float] = HOME) -> int:
    row = db.execute(
        "INSERT INTO elders (name, home_lat, home_lon, address) VALUES (%s, %s, %s, '杏北小区3号楼')"
        " RETURNING id",
        (name, *home),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def caregiver(url: str, name: str = "王秀兰", skills: tuple[str, ...] = ("first_aid",)) -> int:
    async def make(conn: AsyncConnection) -> int:
        c = await cg.create_caregiver(conn, {"name": name, "skills": list(skills)}, T0)
        return int(c["id"])

    return run(url, make)


def new_order(url: str, elder_id: int, kind: str = "meal", **kw: Any) -> store.OrderRecord:
    async def make(conn: AsyncConnection) -> store.OrderRecord:
        rec, _ = await store.create_order(
            conn, elder_id=elder_id, kind=kind, actor=kw.pop("actor", FAMILY), at=T0, **kw
        )
        return rec

    return run(url, make)


def step(url: str, order_id: int, action: str, actor: Actor, minutes: float, **kw: Any) -> Any:
    return run(url, lambda c: store.apply_step(c, order_id, action, actor, at(minutes), **kw))


# --- schema ------------------------------------------------------------------------------


def test_the_100_yuan_plan_is_seeded_as_the_core_defines_it(url: str) -> None:
    (plan,) = run(url, plans.list_plans)
    assert plan == BASIC_100


# --- lifecycle --------------------------------------------------------------------------


def test_a_whole_lifecycle_is_stored_step_by_step_and_reloads_as_the_pure_order(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang = caregiver(url, skills=("meal_delivery",))
    rec = new_order(url, e, notes="少盐")
    assert (rec.state, rec.version, rec.row["source"], rec.row["notes"]) == (
        OrderState.REQUESTED,
        1,
        "family",
        "少盐",
    )
    me = Actor("caregiver", wang)
    step(url, rec.id, "assign", SYSTEM, 0, caregiver_id=wang)
    step(url, rec.id, "accept", me, 1)
    step(url, rec.id, "depart", me, 5)
    step(url, rec.id, "arrive", me, 20, detail={"distance_m": 42.0})
    done = step(url, rec.id, "complete", me, 35, note="饭菜已送到，老人吃了一半")
    assert done.state is OrderState.COMPLETED and done.version == 6
    assert done.row["completion_note"] == "饭菜已送到，老人吃了一半"
    loaded = run(url, lambda c: store.get_order(c, rec.id))
    assert [s.action.value for s in loaded.order.history] == [
        "request",
        "assign",
        "accept",
        "depart",
        "arrive",
        "complete",
    ]
    assert loaded.order.arrived_at == at(20) and loaded.order.caregiver_id == wang
    assert loaded.row["caregiver_name"] == "王秀兰" and loaded.row["elder_name"] == "张桂英"
    assert loaded.steps[4]["detail"] == {"distance_m": 42.0}
    assert done == loaded  # what a step returns is what a fresh read finds


def test_a_source_ref_makes_creation_idempotent(url: str, db: psycopg.Connection) -> None:
    e = elder(db)

    async def twice(conn: AsyncConnection) -> list[tuple[int, bool]]:
        out = []
        for _ in range(2):
            rec, created = await store.create_order(
                conn,
                elder_id=e,
                kind="meal",
                actor=SYSTEM,
                at=T0,
                source="schedule",
                source_ref="schedule:1:2026-03-02T03:30Z",
                due_at=at(90),
            )
            out.append((rec.id, created))
        return out

    (first, made), (second, again) = run(url, twice)
    assert first == second and made and not again
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (1,)


def test_bad_requests_are_refused_with_the_reason(url: str, db: psycopg.Connection) -> None:
    e = elder(db)
    with pytest.raises(NotFound, match="elder 999"):
        new_order(url, 999)
    with pytest.raises(ValueError, match="dispatched at once"):
        new_order(url, e, "emergency", due_at=at(60))
    with pytest.raises(NotPermitted):  # a family member cannot pose as a schedule
        new_order(url, e, source="schedule")
    with pytest.raises(NotPermitted):  # an elder's device asks only for that elder
        new_order(url, e, actor=Actor("elder", e + 1))


def test_illegal_steps_stale_versions_and_strangers_are_refused_with_the_current_state(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang, li = caregiver(url), caregiver(url, "李建国")
    rec = new_order(url, e, "emergency", actor=STAFF)
    with pytest.raises(OrderConflict) as illegal:
        step(url, rec.id, "complete", STAFF, 1)
    assert illegal.value.state is OrderState.REQUESTED and illegal.value.version == 1
    assert {a.value for a in illegal.value.allowed} == {"assign", "cancel"}
    step(url, rec.id, "assign", SYSTEM, 1, caregiver_id=wang)
    with pytest.raises(NotPermitted, match="not assigned to them"):
        step(url, rec.id, "accept", Actor("caregiver", li), 2)
    with pytest.raises(OrderConflict, match="has changed") as stale:
        step(url, rec.id, "cancel", STAFF, 2, version=1)
    assert stale.value.stale and stale.value.version == 2
    with pytest.raises(NotFound, match="order 12345"):
        step(url, 12345, "cancel", STAFF, 2)
    fresh = new_order(url, e, "emergency", actor=STAFF)
    with pytest.raises(NotFound, match="caregiver 777"):
        step(url, fresh.id, "assign", STAFF, 3, caregiver_id=777)


def test_a_reject_hands_the_order_back_and_remembers_who_declined(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang = caregiver(url)
    rec = new_order(url, e, "emergency", actor=STAFF)
    step(url, rec.id, "assign", SYSTEM, 0, caregiver_id=wang)
    after = step(url, rec.id, "reject", Actor("caregiver", wang), 0.5, note="在另一位老人家")
    assert after.state is OrderState.REJECTED and after.row["caregiver_id"] is None
    assert after.row["declined_by"] == [wang] and after.order.declined_by == {wang}


def _two_at_once(url: str, order_id: int, moves: list[tuple[str, Actor, int | None]]) -> list[Any]:
    """Run the moves on separate connections at the same moment; each result is the
    order after, or the exception raised."""
    barrier = threading.Barrier(len(moves))
    results: list[Any] = [None] * len(moves)

    def go(i: int, action: str, actor: Actor, version: int | None) -> None:
        with psycopg.connect(url) as conn:
            barrier.wait()
            try:
                results[i] = store.apply_step_sync(
                    conn, order_id, action, actor, at(1), version=version
                )
            except Exception as exc:
                results[i] = exc

    threads = [threading.Thread(target=go, args=(i, *m)) for i, m in enumerate(moves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_of_two_concurrent_changers_one_wins_and_the_other_sees_the_new_state(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang = caregiver(url)
    me = Actor("caregiver", wang)
    for i in range(6):  # a race is a race: a few rounds
        rec = new_order(url, e, "emergency", actor=STAFF)
        step(url, rec.id, "assign", SYSTEM, 0, caregiver_id=wang)
        if i % 2:  # both accept (the caregiver, and staff on the phone with them)
            moves = [("accept", me, None), ("accept", STAFF, None)]
        else:  # both acted on version 2: accept and cancel would each be legal alone
            moves = [("accept", me, 2), ("cancel", FAMILY, 2)]
        results = _two_at_once(url, rec.id, moves)
        wins = [r for r in results if isinstance(r, store.OrderRecord)]
        losses = [r for r in results if isinstance(r, OrderConflict)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].state is wins[0].state and losses[0].version == 3
        assert losses[0].stale == (i % 2 == 0)
        rows = db.execute(
            "SELECT count(*) FROM order_steps WHERE order_id = %s", (rec.id,)
        ).fetchone()
        assert rows == (3,)  # request, assign, and only the winner's step
        db.commit()


def test_a_changer_waiting_on_the_lock_acts_on_what_it_finds_after(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang = caregiver(url)
    rec = new_order(url, e, "emergency", actor=STAFF)
    step(url, rec.id, "assign", SYSTEM, 0, caregiver_id=wang)
    holder = psycopg.connect(url)
    holder.execute("SELECT 1")
    store.get_order_sync(holder, rec.id, lock=True)  # holds the row
    result: list[Any] = []

    def other() -> None:
        with psycopg.connect(url) as conn:
            try:
                result.append(
                    store.apply_step_sync(conn, rec.id, "accept", Actor("caregiver", wang), at(1))
                )
            except Exception as exc:
                result.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(0.5)
    assert t.is_alive()  # waiting for the lock
    store.apply_step_sync(holder, rec.id, "cancel", STAFF, at(1))
    holder.commit()
    holder.close()
    t.join(10)
    (loss,) = result
    assert isinstance(loss, OrderConflict) and loss.state is OrderState.CANCELLED


def test_lists_filter_by_state_kind_elder_caregiver_and_local_day(
    url: str, db: psycopg.Connection
) -> None:
    a, b = elder(db), elder(db, "李淑珍")
    wang = caregiver(url, skills=("meal_delivery",))
    lunch = new_order(url, a, due_at=datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI))
    new_order(url, b, "cleaning", due_at=datetime(2026, 3, 3, 9, 0, tzinfo=SHANGHAI))
    step(url, lunch.id, "assign", SYSTEM, 0, caregiver_id=wang)

    def q(**kw: Any) -> list[int]:
        items, total = run(url, lambda c: store.list_orders(c, **kw))
        assert total == len(items)
        return [r.id for r in items]

    assert q(day=date(2026, 3, 2)) == [lunch.id]
    assert q(caregiver_id=wang, open=True) == [lunch.id]
    assert len(q(open=True)) == 2 and q(open=False) == []
    assert len(q(kind="cleaning")) == 1 and q(elder_id=a) == [lunch.id]
    assert q(state="assigned") == [lunch.id]


# --- caregivers ---------------------------------------------------------------------------


def test_caregivers_shifts_and_positions(url: str) -> None:
    wang = caregiver(url, skills=("first_aid", "nursing"))

    async def day(conn: AsyncConnection) -> dict[str, Any]:
        await cg.add_shift(conn, wang, at(-60), at(480))
        late = await cg.add_shift(conn, wang, at(600), None)
        await cg.record_position(conn, wang, 34.868, 110.447, 12.0, at(5), at(5))
        # A fix uploaded late does not move the dot back.
        live = await cg.record_position(conn, wang, 34.860, 110.440, 30.0, at(1), at(6))
        on = await cg.list_caregivers(conn, at(10), on_shift=True)
        off = await cg.list_caregivers(conn, at(500), on_shift=True)
        roster = await cg.roster(conn, at(10))
        shifts = await cg.list_shifts(conn, wang)
        await cg.delete_shift(conn, wang, late["id"])
        with pytest.raises(NotFound):
            await cg.delete_shift(conn, wang, late["id"])
        return {"live": live, "on": on, "off": off, "roster": roster, "shifts": shifts}

    out = run(url, day)
    assert out["live"]["lat"] == 34.868 and out["live"]["last_pos_at"] == at(5)
    assert [c["id"] for c in out["on"]] == [wang] and out["off"] == []
    (c,) = out["roster"]
    assert c.skills == {"first_aid", "nursing"} and c.position_ts == at(5)
    assert len(c.shifts) == 2 and c.shifts[1].end is None
    assert [s["ends_at"] for s in out["shifts"]] == [at(480), None]


def test_a_skill_outside_the_catalogue_is_refused(url: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        caregiver(url, skills=("juggling",))


# --- plans, usage, schedules ---------------------------------------------------------------


def test_usage_counts_the_month_of_the_check_in_in_shanghai(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    wang = caregiver(url, skills=("meal_delivery", "housekeeping"))
    me = Actor("caregiver", wang)
    # 07:30 on 1 April in Shanghai is 23:30 UTC on 31 March: it belongs to April.
    served = [datetime(2026, 3, 10, 4, 0, tzinfo=UTC)] * 5 + [
        datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    ]
    for arrive in served:

        async def serve(conn: AsyncConnection, arrive: datetime = arrive) -> None:
            rec, _ = await store.create_order(
                conn, elder_id=e, kind="meal", actor=FAMILY, at=arrive - timedelta(hours=1)
            )
            for action, who, t in (
                ("assign", SYSTEM, -50),
                ("accept", me, -45),
                ("depart", me, -20),
                ("arrive", me, 0),
                ("complete", me, 10),
            ):
                kw = {"caregiver_id": wang} if action == "assign" else {}
                await store.apply_step(
                    conn, rec.id, action, who, arrive + timedelta(minutes=t), **kw
                )

        run(url, serve)

    async def month(conn: AsyncConnection) -> tuple[Any, Any, Any]:
        await plans.put_subscription(conn, e, "basic-100", date(2026, 1, 1))
        return (
            await plans.usage_for_month(conn, e, Month(2026, 3)),
            await plans.usage_for_month(conn, e, Month(2026, 4)),
            await plans.get_subscription(conn, e, date(2026, 3, 15)),
        )

    march, april, sub = run(url, month)
    assert march.line("meal").used == 5 and march.line("meal").extra == 1
    assert march.total_fen == 10_000 + 1_200
    assert april.line("meal").used == 1 and april.extra_fen == 0
    assert sub["plan_code"] == "basic-100" and sub["allowances"]["meal"] == 4


def test_a_new_subscription_ends_the_running_one(url: str, db: psycopg.Connection) -> None:
    e = elder(db)

    async def change(conn: AsyncConnection) -> tuple[Any, Any, Any]:
        await plans.put_subscription(conn, e, "basic-100", date(2026, 1, 1))
        await plans.put_subscription(conn, e, "basic-100", date(2026, 3, 1))
        with pytest.raises(NotFound, match="plan"):
            await plans.put_subscription(conn, e, "gold", date(2026, 3, 1))
        return (
            await plans.get_subscription(conn, e, date(2026, 2, 10)),
            await plans.get_subscription(conn, e, date(2026, 3, 10)),
            await plans.usage_for_month(conn, e, Month(2025, 12)),
        )

    feb, mar, dec = run(url, change)
    assert (feb["starts_on"], feb["ends_on"]) == (date(2026, 1, 1), date(2026, 2, 28))
    assert mar["starts_on"] == date(2026, 3, 1) and mar["ends_on"] is None
    assert dec.plan_code is None and dec.fee_fen == 0


def test_schedules_are_validated_and_stopped_not_forgotten(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)

    async def manage(conn: AsyncConnection) -> tuple[Any, Any, Any]:
        lunch = await plans.create_schedule(
            conn, e, "meal", "mon-fri", time(11, 30), date(2026, 3, 1)
        )
        with pytest.raises(ValueError, match="cannot be booked ahead"):
            await plans.create_schedule(conn, e, "emergency", "mon", time(9), date(2026, 3, 1))
        with pytest.raises(ValueError, match="weekday"):
            await plans.create_schedule(conn, e, "meal", "someday", time(9), date(2026, 3, 1))
        rules = await plans.weekly_rules(conn)
        await plans.delete_schedule(conn, lunch["id"])
        return lunch, rules, await plans.list_schedules(conn, e)

    lunch, rules, after = run(url, manage)
    assert lunch["weekdays"] == "mon-fri" and lunch["local_time"] == time(11, 30)
    assert [r.days for r in rules] == [frozenset({1, 2, 3, 4, 5})] and after == []


# --- the 助急 seam ------------------------------------------------------------------------


def _sos(ts: datetime) -> Finding:
    return Finding("sos", Severity.CRITICAL, ts, "SOS 按键")


def test_a_critical_alert_creates_a_dispatchable_emergency_order_in_its_transaction(
    url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    (change,) = record_findings(db, [(e, _sos(T0))], T0)
    alert_id = change.alert["id"]
    # Not committed yet: nobody else sees either the alert or the order.
    with psycopg.connect(url) as other:
        assert other.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    db.commit()
    row = db.execute(
        "SELECT id, kind, state, source, source_ref, alert_id FROM orders WHERE elder_id = %s",
        (e,),
    ).fetchone()
    assert row is not None
    order_id = row[0]
    assert row[1:] == ("emergency", "requested", "alert", f"alert:{alert_id}", alert_id)
    (detail,) = db.execute(
        "SELECT detail FROM alert_events WHERE alert_id = %s"
        " AND action = 'emergency_order_requested'",
        (alert_id,),
    ).fetchone()  # type: ignore[misc]
    assert detail["order"] == order_id
    # A repeat of the same alert does not order again.
    record_findings(db, [(e, _sos(at(1)))], at(1))
    db.commit()
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (1,)


def test_an_alert_rolled_back_takes_its_order_with_it(url: str, db: psycopg.Connection) -> None:
    e = elder(db)
    record_findings(db, [(e, _sos(T0))], T0)
    db.rollback()
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
