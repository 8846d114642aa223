"""The alert store against the real database: atomic episodes under concurrency,
repeats, cooldown, clears, incidents, the 助急 seam, and escalation over time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alerts.core import Action, Finding, Severity
from api.escalator import Escalator
from conftest import wait_until
from storage import alerts as store
from storage.alerts import AlertChange, Change, record_findings

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def finding(
    kind: str,
    severity: str = "medium",
    ts: datetime = T0,
    action: Action = Action.RAISE,
    value: float | None = None,
    message: str = "测试",
    **detail: Any,
) -> Finding:
    return Finding(kind, Severity(severity), ts, message, action, value, detail)


def elder(db: psycopg.Connection, name: str = "刘淑珍") -> int:
    row = db.execute("INSERT INTO elders (name) VALUES (%s) RETURNING id", (name,)).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def record(
    db: psycopg.Connection, items: list[tuple[int, Finding]], now: datetime, **kw: Any
) -> list[AlertChange]:
    changes = record_findings(db, items, now, **kw)
    db.commit()
    return changes


def alerts_of(db: psycopg.Connection, elder_id: int) -> list[tuple]:
    return db.execute(
        "SELECT kind, state, severity, count, suppressed, outcome FROM alerts"
        " WHERE elder_id = %s ORDER BY id",
        (elder_id,),
    ).fetchall()


def actions(db: psycopg.Connection, alert_id: int) -> list[str]:
    rows = db.execute(
        "SELECT action FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    return [r[0] for r in rows]


def resolve(url: str, alert_id: int, outcome: str, now: datetime) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await store.resolve(conn, alert_id, "王值班", outcome, None, now)

    return asyncio.run(run())


# --- one episode per elder and kind -------------------------------------------------------


def test_a_repeat_updates_the_episode(db: psycopg.Connection) -> None:
    e = elder(db)
    (opened,) = record(db, [(e, finding("news2_hr", "medium", at(0), value=118))], at(0))
    (again,) = record(db, [(e, finding("news2_hr", "medium", at(3), value=125))], at(3))
    assert opened.change is Change.OPENED and again.change is Change.REPEATED
    a = again.alert
    assert a["id"] == opened.alert["id"] == a["incident_id"]
    assert (a["count"], a["value"], a["first_ts"], a["last_ts"]) == (2, 125.0, at(0), at(3))
    assert a["opened_at"] == at(0) and a["updated_at"] == at(3)
    assert a["elder_name"] == "刘淑珍" and list(a) == list(store.ALERT_FIELDS)
    assert actions(db, a["id"]) == ["opened", "repeated"]
    assert not again.notify and opened.notify


def test_severity_rises_with_a_more_severe_repeat_and_is_never_lowered(
    db: psycopg.Connection,
) -> None:
    e = elder(db)
    record(db, [(e, finding("news2_spo2", "high", at(0)))], at(0))
    (up,) = record(db, [(e, finding("news2_spo2", "critical", at(1)))], at(1))
    (down,) = record(db, [(e, finding("news2_spo2", "medium", at(2), message="好转"))], at(2))
    assert up.change is Change.ESCALATED_SEVERITY and up.alert["severity"] == "critical"
    assert up.notify
    assert down.change is Change.REPEATED and down.alert["severity"] == "critical"
    assert down.alert["message"] == "好转" and down.alert["count"] == 3


def test_a_late_finding_does_not_overwrite_the_newest_value(db: psycopg.Connection) -> None:
    e = elder(db)
    record(db, [(e, finding("news2_hr", ts=at(10), value=130))], at(10))
    (late,) = record(db, [(e, finding("news2_hr", ts=at(2), value=99))], at(11))
    a = late.alert
    assert (a["value"], a["first_ts"], a["last_ts"], a["count"]) == (130.0, at(2), at(10), 2)


def test_two_workers_raising_at_the_same_moment_make_one_alert(
    database_url: str, db: psycopg.Connection
) -> None:
    """Both workers read "no active alert" before either writes (the table lock below
    holds their writes back), then race on the insert: the index makes it one episode."""
    e = elder(db)
    db.execute("LOCK TABLE alerts IN SHARE MODE")  # readers pass, writers wait
    results: dict[int, list[AlertChange]] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                results[i] = record_findings(conn, [(e, finding("sos", "critical"))], at(0))
                conn.commit()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    with psycopg.connect(database_url, autocommit=True) as watch:
        wait_until(
            lambda: (
                watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                == 2
            )
        )
    db.commit()  # release: both inserts go at once
    for t in threads:
        t.join(30)
    assert not errors
    assert alerts_of(db, e) == [("sos", "open", "critical", 2, 0, None)]
    changes = sorted(c.change.value for r in results.values() for c in r)
    assert changes == ["opened", "repeated"]
    (alert_id,) = {c.alert["id"] for r in results.values() for c in r}
    assert actions(db, alert_id) == ["opened", "emergency_order_requested", "repeated"]


# --- cooldown -----------------------------------------------------------------------------


def test_a_flap_back_within_the_cooldown_is_counted_on_the_resolved_alert(
    db: psycopg.Connection,
) -> None:
    e = elder(db)
    (opened,) = record(db, [(e, finding("inactivity"))], at(0))
    (cleared,) = record(db, [(e, finding("inactivity", action=Action.CLEAR))], at(5))
    assert cleared.change is Change.SELF_CLEARED
    (again,) = record(db, [(e, finding("inactivity", ts=at(8)))], at(8))
    assert again.change is Change.SUPPRESSED and again.alert["id"] == opened.alert["id"]
    assert again.alert["suppressed"] == 1 and again.alert["state"] == "resolved"
    (worse,) = record(db, [(e, finding("inactivity", "high", ts=at(9)))], at(9))
    assert worse.change is Change.OPENED  # more severe than what was resolved: news
    record(db, [(e, finding("news2_hr", ts=at(30)))], at(30))
    assert alerts_of(db, e) == [
        ("inactivity", "resolved", "medium", 1, 1, "self_cleared"),
        ("inactivity", "open", "high", 1, 0, None),
        ("news2_hr", "open", "medium", 1, 0, None),
    ]
    assert actions(db, opened.alert["id"]) == ["opened", "resolved", "suppressed"]


def test_after_the_cooldown_a_new_episode_opens(db: psycopg.Connection, database_url: str) -> None:
    e = elder(db)
    (first,) = record(db, [(e, finding("not_worn", "low"))], at(0))
    resolve(database_url, first.alert["id"], "handled", at(1))
    (again,) = record(db, [(e, finding("not_worn", "low", ts=at(12)))], at(12))
    assert again.change is Change.OPENED and again.alert["id"] != first.alert["id"]


def test_sos_is_never_suppressed(db: psycopg.Connection, database_url: str) -> None:
    e = elder(db)
    (first,) = record(db, [(e, finding("sos", "critical"))], at(0))
    resolve(database_url, first.alert["id"], "handled", at(1))
    (again,) = record(db, [(e, finding("sos", "critical", ts=at(1.5)))], at(1.5))
    assert again.change is Change.OPENED


# --- clears -------------------------------------------------------------------------------


def test_clears(db: psycopg.Connection) -> None:
    e = elder(db)
    record(
        db,
        [
            (e, finding("fall", "critical", episode="open")),
            (e, finding("news2_partial", "critical")),
            (e, finding("sos", "critical")),
            (e, finding("news2_rr", "high")),
        ],
        at(0),
    )
    clears = record(
        db,
        [
            (e, finding(k, s, ts=at(1), action=Action.CLEAR, reason="cancelled"))
            for k, s in [("fall", "critical"), ("news2_partial", "critical"), ("sos", "critical")]
        ]
        + [(e, finding("news2_rr", "medium", ts=at(1), action=Action.CLEAR))],
        at(1),
    )
    assert [(c.alert["kind"], c.change.value, c.alert["state"]) for c in clears] == [
        ("fall", "withdrawn", "resolved"),
        ("news2_partial", "cleared", "open"),
        ("sos", "cleared", "open"),
        ("news2_rr", "self_cleared", "resolved"),
    ]
    by_kind = {c.alert["kind"]: c.alert for c in clears}
    assert by_kind["fall"]["outcome"] == "withdrawn" and by_kind["fall"]["resolved_by"] == "system"
    assert by_kind["sos"]["cleared_at"] == at(1) and by_kind["sos"]["outcome"] is None
    # A second clear of a still-active alert says nothing new; a clear with nothing open, too.
    assert record(db, [(e, finding("sos", "critical", action=Action.CLEAR))], at(2)) == []
    assert record(db, [(e, finding("inactivity", action=Action.CLEAR))], at(2)) == []
    # The condition coming back un-notes the clear.
    (back,) = record(db, [(e, finding("news2_partial", "critical", ts=at(3)))], at(3))
    assert back.alert["cleared_at"] is None and back.alert["count"] == 2


# --- incidents ------------------------------------------------------------------------------


def test_a_fall_then_no_movement_is_one_incident(db: psycopg.Connection) -> None:
    e, other = elder(db), elder(db, "王建国")
    (fall,) = record(db, [(e, finding("fall", "critical"))], at(0))
    (still,) = record(db, [(e, finding("inactivity", ts=at(5)))], at(5))
    (battery,) = record(db, [(e, finding("low_battery", "low", ts=at(6)))], at(6))
    (theirs,) = record(db, [(other, finding("inactivity", ts=at(6)))], at(6))
    (pulse,) = record(db, [(e, finding("news2_hr", "high", ts=at(21)))], at(21))
    incident = fall.alert["id"]
    assert fall.alert["incident_id"] == incident and still.alert["incident_id"] == incident
    assert battery.alert["incident_id"] == battery.alert["id"]  # not related
    assert theirs.alert["incident_id"] == theirs.alert["id"]  # another elder
    assert pulse.alert["incident_id"] == pulse.alert["id"]  # 16 min after the newest: new


# --- the 助急 seam --------------------------------------------------------------------------


class Orders:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.requested: list[int] = []

    def request(self, conn: psycopg.Connection, alert: dict[str, Any]) -> None:
        conn.execute("SELECT 1")
        if self.fail:
            conn.execute("SELECT 1 / 0")  # breaks the transaction: the savepoint must hold
        self.requested.append(alert["id"])


def test_the_seam_is_asked_once_when_an_alert_becomes_critical(db: psycopg.Connection) -> None:
    e = elder(db)
    orders = Orders()
    (sos,) = record(db, [(e, finding("sos", "critical"))], at(0), orders=orders)
    record(db, [(e, finding("sos", "critical", ts=at(1)))], at(1), orders=orders)
    (spo2,) = record(db, [(e, finding("news2_spo2", "high"))], at(0), orders=orders)
    record(db, [(e, finding("news2_spo2", "critical", ts=at(2)))], at(2), orders=orders)
    record(db, [(e, finding("news2_spo2", "critical", ts=at(3)))], at(3), orders=orders)
    record(db, [(e, finding("low_battery", "low"))], at(0), orders=orders)
    assert orders.requested == [sos.alert["id"], spo2.alert["id"]]


def test_the_default_seam_writes_the_request_into_the_audit_trail(db: psycopg.Connection) -> None:
    e = elder(db)
    (fall,) = record(db, [(e, finding("fall", "critical"))], at(0))
    (medium,) = record(db, [(e, finding("inactivity"))], at(0))
    assert actions(db, fall.alert["id"]) == ["opened", "emergency_order_requested"]
    assert actions(db, medium.alert["id"]) == ["opened"]


def test_a_failing_order_module_does_not_lose_the_alert(db: psycopg.Connection) -> None:
    e = elder(db)
    (sos,) = record(db, [(e, finding("sos", "critical"))], at(0), orders=Orders(fail=True))
    assert alerts_of(db, e) == [("sos", "open", "critical", 1, 0, None)]
    assert actions(db, sos.alert["id"]) == ["opened", "emergency_order_failed"]


# --- robustness -----------------------------------------------------------------------------


def test_notes_are_not_alerts_and_a_rejected_finding_loses_no_other(db: psycopg.Connection) -> None:
    e = elder(db)
    changes = record(
        db,
        [
            (e, finding("fall_dismissed", "low", episode="note")),
            (999_999, finding("sos", "critical")),  # no such elder: rejected by the FK
            (e, finding("inactivity", value=float("nan"), weird=float("inf"), when=T0)),
        ],
        at(0),
    )
    assert [(c.alert["kind"], c.change.value) for c in changes] == [("inactivity", "opened")]
    assert changes[0].alert["value"] is None
    assert changes[0].alert["detail"] == {"weird": None, "when": T0.isoformat()}


def test_record_findings_leaves_the_commit_to_the_caller(db: psycopg.Connection) -> None:
    e = elder(db)
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    changes = record_findings(db, [(e, finding("sos", "critical")), (e, finding("fall"))], at(0))
    assert len(changes) == 2
    db.rollback()
    assert alerts_of(db, e) == []
    assert db.execute("SELECT count(*) FROM alert_events").fetchone() == (0,)


def test_record_findings_refuses_to_run_outside_a_transaction(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(ValueError, match="transaction"),
    ):
        record_findings(conn, [], at(0))


# --- escalation over time ---------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    yield [T0]


def test_escalation_levels_are_recorded_once_each_over_time(
    database_url: str, db: psycopg.Connection, clock: list[datetime]
) -> None:
    e = elder(db)
    (sos,) = record(db, [(e, finding("sos", "critical"))], at(0))
    (hr,) = record(db, [(e, finding("news2_hr", "high"))], at(0))
    (acked,) = record(db, [(e, finding("fall", "critical"))], at(0))
    (dull,) = record(db, [(e, finding("inactivity"))], at(0))
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = %s, acknowledged_by = '李'"
        " WHERE id = %s",
        (at(1), acked.alert["id"]),
    )
    db.commit()
    pushed: list[dict[str, Any]] = []

    async def walk() -> list[tuple[float, list[tuple[str, int]]]]:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=2) as pool:
            escalator = Escalator(pool, pushed.append, clock=lambda: clock[0])
            seen = []
            for minute in (0, 1, 2, 2.5, 4, 5, 9, 10, 11, 60):
                clock[0] = at(minute)
                climbed = await escalator.tick()
                seen.append((minute, [(a["kind"], a["escalation_level"]) for a in climbed]))
            return seen

    assert asyncio.run(walk()) == [
        (0, []),
        (1, []),
        (2, [("sos", 1)]),
        (2.5, []),
        (4, []),
        (5, [("sos", 2)]),
        (9, []),
        (10, [("sos", 3), ("news2_hr", 1)]),
        (11, []),
        (60, []),
    ]
    assert [(a["id"], a["escalation_level"]) for a in pushed] == [
        (sos.alert["id"], 1),
        (sos.alert["id"], 2),
        (sos.alert["id"], 3),
        (hr.alert["id"], 1),
    ]
    levels = db.execute(
        "SELECT alert_id, (detail->>'level')::int, detail->>'target', at FROM alert_events"
        " WHERE action = 'escalated' ORDER BY id"
    ).fetchall()
    assert levels == [
        (sos.alert["id"], 1, "supervisor", at(2)),
        (sos.alert["id"], 2, "family", at(5)),
        (sos.alert["id"], 3, "emergency_number", at(10)),
        (hr.alert["id"], 1, "supervisor", at(10)),
    ]
    assert actions(db, acked.alert["id"]) == ["opened", "emergency_order_requested"]
    assert actions(db, dull.alert["id"]) == ["opened"]


def test_a_late_first_pass_records_every_missed_level(
    database_url: str, db: psycopg.Connection
) -> None:
    e = elder(db)
    (sos,) = record(db, [(e, finding("sos", "critical"))], at(0))

    async def once() -> list[dict[str, Any]]:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=2) as pool:
            first = await Escalator(pool, lambda a: None, clock=lambda: at(7)).tick()
            again = await Escalator(pool, lambda a: None, clock=lambda: at(7)).tick()
            return first + again

    (climbed,) = asyncio.run(once())
    assert climbed["escalation_level"] == 2
    assert actions(db, sos.alert["id"]).count("escalated") == 2


def test_the_detection_shell_reads_per_elder_thresholds(
    database_url: str, db: psycopg.Connection
) -> None:
    e, f, g = elder(db), elder(db, "王建国"), elder(db, "张桂兰")

    async def put() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await store.put_thresholds(conn, e, {"fall": {"moved_steps": 30}}, "王主任", at(0))
            await store.put_thresholds(conn, f, {"heart_rate": {"rest_high": 110}}, "王", at(0))

    asyncio.run(put())
    assert store.load_thresholds(db) == {
        e: {"fall": {"moved_steps": 30}},
        f: {"heart_rate": {"rest_high": 110}},
    }
    assert store.load_thresholds(db, [f, g]) == {f: {"heart_rate": {"rest_high": 110}}}
