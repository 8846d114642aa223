"""The alert API against the real database: list and filter, one alert with its
readings and history, acknowledge/resolve (and their races), false-alarm stats,
per-elder thresholds, and the WebSocket push."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.core import Action, Finding, Severity
from alerts.seams import EmergencyOrders
from api.alert_feed import AlertFeed
from api.app import create_app
from conftest import as_admin, test_settings, wait_until
from storage.alerts import record_findings
from storage.writer import Batch, write_batch

# Real time: the app's own escalator runs during these tests, and the time-series
# partitions exist around today.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(database_url: str, db: psycopg.Connection) -> Iterator[TestClient]:
    with TestClient(create_app(test_settings(), database_url)) as c:
        yield as_admin(c, database_url)


def elder(db: psycopg.Connection, name: str = "刘淑珍") -> int:
    row = db.execute("INSERT INTO elders (name) VALUES (%s) RETURNING id", (name,)).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def raise_alert(
    db: psycopg.Connection,
    elder_id: int,
    kind: str,
    severity: str = "medium",
    ts: datetime = NOW,
    now: datetime = NOW,
    action: Action = Action.RAISE,
) -> dict[str, Any]:
    f = Finding(kind, Severity(severity), ts, f"{kind} 测试", action, 1.0, {"episode": "open"})
    (change,) = record_findings(db, [(elder_id, f)], now)
    db.commit()
    return change.alert


def ack(client: TestClient, alert_id: int, by: str = "王值班", **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": by, **body})


def resolve(client: TestClient, alert_id: int, outcome: str, by: str = "王值班") -> httpx.Response:
    return client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": by, "outcome": outcome})


# --- list and filter ----------------------------------------------------------------------


def test_the_alert_shape_is_exact(client: TestClient, db: psycopg.Connection) -> None:
    a = raise_alert(db, elder(db), "news2_hr", "high")
    (got,) = client.get("/api/v1/alerts").json()["data"]
    assert list(got) == [
        "id",
        "elder_id",
        "elder_name",
        "kind",
        "severity",
        "state",
        "message",
        "value",
        "detail",
        "incident_id",
        "count",
        "suppressed",
        "first_ts",
        "last_ts",
        "opened_at",
        "updated_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "outcome",
        "note",
        "escalation_level",
        "cleared_at",
    ]
    assert got["id"] == a["id"] and got["elder_name"] == "刘淑珍" and got["state"] == "open"
    assert got["first_ts"] == NOW.isoformat().replace("+00:00", "Z")
    assert got["escalation_level"] == 0 and got["incident_id"] == a["id"]


def test_active_alerts_are_listed_most_severe_first(
    client: TestClient, db: psycopg.Connection
) -> None:
    e, f = elder(db), elder(db, "王建国")
    low = raise_alert(db, e, "low_battery", "low", now=NOW - timedelta(minutes=1))
    crit = raise_alert(db, f, "sos", "critical", now=NOW - timedelta(minutes=5))
    med = raise_alert(db, e, "inactivity", "medium", now=NOW - timedelta(minutes=2))
    med2 = raise_alert(db, f, "inactivity", "medium", now=NOW)
    done = raise_alert(db, e, "not_worn", "low")
    assert resolve(client, done["id"], "handled").status_code == 200
    assert ack(client, med["id"]).status_code == 200

    def ids(**params: Any) -> tuple[list[int], int]:
        r = client.get("/api/v1/alerts", params=params)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["data"]], r.json()["count"]

    assert ids(state="active") == ([crit["id"], med2["id"], med["id"], low["id"]], 4)
    assert ids() == ([done["id"], med2["id"], med["id"], crit["id"], low["id"]], 5)
    assert ids(state="open") == ([med2["id"], crit["id"], low["id"]], 3)
    assert ids(state="acknowledged") == ([med["id"]], 1)
    assert ids(state="resolved") == ([done["id"]], 1)
    assert ids(elder_id=f) == ([med2["id"], crit["id"]], 2)
    assert ids(kind="inactivity", state="active") == ([med2["id"], med["id"]], 2)
    assert ids(severity="low") == ([done["id"], low["id"]], 2)
    since = (NOW - timedelta(minutes=3)).isoformat()
    assert ids(since=since, state="active") == ([med2["id"], med["id"], low["id"]], 3)
    assert ids(limit=2) == ([done["id"], med2["id"]], 5)
    assert ids(limit=2, before_id=med2["id"]) == ([med["id"], crit["id"]], 5)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"state": "closed"}, "state"),
        ({"severity": "urgent"}, "severity"),
        ({"kind": "Robert'); DROP TABLE alerts"}, "kind"),
        ({"since": "2026-11-28T08:00:00"}, "UTC offset"),
        ({"limit": 0}, "limit"),
        ({"elder_id": 0}, "elder_id"),
    ],
)
def test_bad_filters_are_422(client: TestClient, params: dict, fragment: str) -> None:
    r = client.get("/api/v1/alerts", params=params)
    assert r.status_code == 422 and fragment in r.text


# --- one alert ------------------------------------------------------------------------------


def test_one_alert_with_the_readings_around_it(client: TestClient, db: psycopg.Connection) -> None:
    e = elder(db)
    db.execute("INSERT INTO devices (id, elder_id) VALUES ('aw-1', %s)", (e,))
    db.commit()
    t = NOW - timedelta(hours=1)
    b = Batch()
    b.rows["vitals"] = [
        (
            t + timedelta(minutes=m),
            "aw-1",
            i,
            e,
            70.0 + m,
            97.0,
            None,
            None,
            None,
            None,
            10,
            80.0,
            True,
            NOW,
        )
        for i, m in enumerate((-20, -14, 0, 14, 16))
    ]
    b.rows["positions"] = [
        (t + timedelta(minutes=2), "aw-1", 10, e, 34.867, 110.447, 8.0, "gps", NOW)
    ]
    b.rows["device_events"] = [
        (t, "aw-1", 11, e, "fall", None, None, NOW),
        (t - timedelta(minutes=30), "aw-1", 12, e, "sos", None, None, NOW),
    ]
    write_batch(db, b)
    a = raise_alert(db, e, "fall", "critical", ts=t)
    raise_alert(db, elder(db, "别人"), "fall", "critical", ts=t)
    r = client.get(f"/api/v1/alerts/{a['id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == a["id"] and body["kind"] == "fall"
    readings = body["readings"]
    assert [v["hr"] for v in readings["vitals"]] == [56.0, 70.0, 84.0]  # -14, 0, +14 minutes
    assert [(p["lat"], p["src"]) for p in readings["positions"]] == [(34.867, "gps")]
    assert [ev["type"] for ev in readings["events"]] == ["fall"]
    assert [h["action"] for h in body["history"]] == ["opened", "emergency_order_requested"]
    assert client.get("/api/v1/alerts/999999").status_code == 404


# --- acknowledge and resolve -----------------------------------------------------------------


def test_open_acknowledge_resolve_is_audited_step_by_step(
    client: TestClient, db: psycopg.Connection
) -> None:
    a = raise_alert(db, elder(db), "inactivity")
    r = ack(client, a["id"], by=" 王值班 ", note="已电话联系")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "acknowledged" and got["acknowledged_by"] == "王值班"
    assert got["note"] == "已电话联系" and got["acknowledged_at"] is not None
    r = client.post(
        f"/api/v1/alerts/{a['id']}/resolve",
        json={"by": "李护工", "outcome": "handled", "note": "已上门"},
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["outcome"], done["resolved_by"]) == (
        "resolved",
        "handled",
        "李护工",
    )
    assert done["acknowledged_by"] == "王值班" and done["note"] == "已上门"
    history = client.get(f"/api/v1/alerts/{a['id']}").json()["history"]
    assert [(h["action"], h["actor"], h["from_state"], h["to_state"]) for h in history] == [
        ("opened", "system", None, "open"),
        ("acknowledged", "王值班", "open", "acknowledged"),
        ("resolved", "李护工", "acknowledged", "resolved"),
    ]
    assert history[2]["detail"] == {"outcome": "handled", "note": "已上门"}


def test_resolving_an_open_alert_acknowledges_it_too(
    client: TestClient, db: psycopg.Connection
) -> None:
    a = raise_alert(db, elder(db), "news2_spo2", "high")
    done = resolve(client, a["id"], "false_alarm").json()
    assert done["acknowledged_by"] == done["resolved_by"] == "王值班"
    history = client.get(f"/api/v1/alerts/{a['id']}").json()["history"]
    assert [(h["action"], h["to_state"]) for h in history] == [
        ("opened", "open"),
        ("acknowledged", "acknowledged"),
        ("resolved", "resolved"),
    ]
    assert history[1]["detail"] == {"implied_by": "resolve"}


def test_illegal_transitions_are_409_with_the_current_state(
    client: TestClient, db: psycopg.Connection
) -> None:
    a = raise_alert(db, elder(db), "inactivity")
    assert ack(client, a["id"]).status_code == 200
    r = ack(client, a["id"])
    assert r.status_code == 409
    assert r.json() == {
        "detail": "cannot acknowledge an alert that is acknowledged",
        "state": "acknowledged",
    }
    assert resolve(client, a["id"], "handled").status_code == 200
    r = resolve(client, a["id"], "duplicate")
    assert r.status_code == 409 and r.json()["state"] == "resolved"
    assert ack(client, 999999).status_code == 404
    assert resolve(client, 999999, "handled").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"outcome": "handled"}, "by"),
        ({"by": "", "outcome": "handled"}, "by"),
        ({"by": "x" * 51, "outcome": "handled"}, "by"),
        ({"by": "王", "outcome": "self_cleared"}, "outcome"),  # the system's, not a person's
        ({"by": "王", "outcome": "withdrawn"}, "outcome"),
        ({"by": "王", "outcome": "lunch"}, "outcome"),
        ({"by": "王", "outcome": "handled", "colour": "red"}, "colour"),
    ],
)
def test_bad_resolve_bodies_are_422(
    client: TestClient, db: psycopg.Connection, body: dict, fragment: str
) -> None:
    a = raise_alert(db, elder(db), "inactivity")
    r = client.post(f"/api/v1/alerts/{a['id']}/resolve", json=body)
    assert r.status_code == 422 and fragment in r.text
    assert client.get(f"/api/v1/alerts/{a['id']}").json()["state"] == "open"


def test_of_two_concurrent_acknowledges_one_wins(
    client: TestClient, db: psycopg.Connection, database_url: str
) -> None:
    a = raise_alert(db, elder(db), "sos", "critical")
    # Hold the row so that both requests are inside the database, waiting, before either acts.
    db.execute("SELECT 1 FROM alerts WHERE id = %s FOR UPDATE", (a["id"],))
    responses: list[httpx.Response] = []

    def post(by: str) -> None:
        responses.append(ack(client, a["id"], by=by))

    threads = [threading.Thread(target=post, args=(n,)) for n in ("甲", "乙")]
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
    db.rollback()
    for t in threads:
        t.join(30)
    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(r.json() for r in responses if r.status_code == 200)
    loser = next(r.json() for r in responses if r.status_code == 409)
    assert loser["state"] == "acknowledged"
    history = client.get(f"/api/v1/alerts/{a['id']}").json()["history"]
    acks = [h["actor"] for h in history if h["action"] == "acknowledged"]
    assert acks == [winner["acknowledged_by"]]


# --- stats -----------------------------------------------------------------------------------


def test_false_alarms_are_counted_per_rule_and_per_elder(
    client: TestClient, db: psycopg.Connection
) -> None:
    e, f = elder(db), elder(db, "王建国")
    falls = [raise_alert(db, x, "fall", "critical") for x in (e, f)]
    hr = raise_alert(db, e, "news2_hr", "high")
    raise_alert(db, e, "inactivity")  # still open: not counted
    raise_alert(db, f, "inactivity")
    raise_alert(db, f, "inactivity", action=Action.CLEAR)  # self_cleared: not judged
    assert resolve(client, falls[0]["id"], "false_alarm").status_code == 200
    assert resolve(client, falls[1]["id"], "hospital").status_code == 200
    assert resolve(client, hr["id"], "false_alarm").status_code == 200
    stats = client.get("/api/v1/alerts/stats").json()
    assert stats["by_kind"] == {
        "fall": {"resolved": 2, "judged": 2, "false_alarms": 1, "false_alarm_rate": 0.5},
        "inactivity": {"resolved": 1, "judged": 0, "false_alarms": 0, "false_alarm_rate": None},
        "news2_hr": {"resolved": 1, "judged": 1, "false_alarms": 1, "false_alarm_rate": 1.0},
    }
    assert [
        (x["elder_id"], x["elder_name"], x["false_alarms"], x["false_alarm_rate"])
        for x in stats["by_elder"]
    ] == [(e, "刘淑珍", 2, 1.0), (f, "王建国", 0, 0.0)]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = client.get("/api/v1/alerts/stats", params={"since": later}).json()
    assert empty["by_kind"] == {} and empty["by_elder"] == []


# --- thresholds ------------------------------------------------------------------------------


def test_thresholds_round_trip(client: TestClient, db: psycopg.Connection) -> None:
    e = elder(db)
    first = client.get(f"/api/v1/elders/{e}/thresholds").json()
    assert first == {"elder_id": e, "thresholds": {}, "updated_at": None, "updated_by": None}
    overrides = {"fall": {"confirm_window_s": 90}, "vitals": {"hypercapnic": True}}
    r = client.put(f"/api/v1/elders/{e}/thresholds", json={"by": "王主任", "thresholds": overrides})
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/elders/{e}/thresholds").json()
    assert got["thresholds"] == overrides and got["updated_by"] == "王主任"
    stored = db.execute("SELECT thresholds FROM elder_settings WHERE elder_id = %s", (e,))
    assert stored.fetchone() == (overrides,)
    r = client.put(f"/api/v1/elders/{e}/thresholds", json={"by": "王主任", "thresholds": {}})
    assert r.json()["thresholds"] == {}


@pytest.mark.parametrize(
    ("thresholds", "status", "fragment"),
    [
        ({"gremlins": {"x": 1}}, 422, "unknown settings group 'gremlins'"),
        ({"news2_hr": {"min_score": 2}}, 422, "set under 'vitals'"),
        ({"fall": {"confirm_window_s": 5000}}, 422, "between 10 and 600 (got 5000)"),
        ({"fall": {"speed": 3}}, 422, "fall has no setting 'speed'"),
        ({"vitals": {"min_score": 1.5}}, 422, "whole number"),
        ({"sos": {"enabled": False}}, 422, "cannot be configured away"),
        ([1, 2], 422, "thresholds"),
    ],
)
def test_threshold_errors_say_what_is_wrong(
    client: TestClient, db: psycopg.Connection, thresholds: Any, status: int, fragment: str
) -> None:
    e = elder(db)
    r = client.put(f"/api/v1/elders/{e}/thresholds", json={"by": "王", "thresholds": thresholds})
    assert r.status_code == status and fragment in r.text, r.text


def test_thresholds_of_an_unknown_elder_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/elders/999999/thresholds").status_code == 404
    r = client.put("/api/v1/elders/999999/thresholds", json={"by": "王", "thresholds": {}})
    assert r.status_code == 404 and "elder 999999" in r.text


# --- WebSocket -------------------------------------------------------------------------------


def _next_alert(ws: Any) -> dict[str, Any]:
    """The next alert message; the socket also carries the map and (since an SOS asks for
    a 助急 order) order and caregiver news."""
    while (msg := ws.receive_json())["type"] != "alert":
        pass
    return msg


def test_alerts_are_pushed_to_the_dashboards(client: TestClient, db: psycopg.Connection) -> None:
    e = elder(db)
    a = raise_alert(db, e, "inactivity")
    hub = client.app.state.hub  # type: ignore[attr-defined]
    with client.websocket_connect("/ws/live") as ws:
        # The detection shell publishes from the ingest thread after its commit.
        sos = raise_alert(db, e, "sos", "critical")
        pusher = threading.Thread(target=hub.publish_alert, args=(sos,))
        pusher.start()
        pusher.join()
        first = _next_alert(ws)
        assert first["alert"]["id"] == sos["id"]
        assert (
            first["alert"] == client.get("/api/v1/alerts", params={"kind": "sos"}).json()["data"][0]
        )
        assert ack(client, a["id"]).status_code == 200
        pushed = _next_alert(ws)
        assert pushed["alert"]["state"] == "acknowledged"
        assert pushed["alert"]["id"] == a["id"]
    wait_until(lambda: hub.client_count == 0)


def test_the_app_exposes_the_emergency_order_seam_and_documents_the_routes(
    client: TestClient,
) -> None:
    assert isinstance(client.app.state.emergency_orders, EmergencyOrders)  # type: ignore[attr-defined]
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/v1/alerts",
        "/api/v1/alerts/stats",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/alerts/{alert_id}/acknowledge",
        "/api/v1/alerts/{alert_id}/resolve",
        "/api/v1/elders/{elder_id}/thresholds",
    ):
        assert p in paths


def test_a_slow_dashboard_gets_each_alerts_newest_version_once(db: psycopg.Connection) -> None:
    e = elder(db)
    first = raise_alert(db, e, "inactivity")
    second = raise_alert(db, e, "inactivity")  # the same episode, count 2
    other = raise_alert(db, e, "low_battery", "low")

    async def scenario() -> list[dict[str, Any]]:
        feed = AlertFeed()
        sub = feed.subscribe()
        ingest = threading.Thread(target=feed.publish_alert, args=(first,))  # another thread
        ingest.start()
        ingest.join()
        feed.publish_alert(other)
        feed.publish_alert(second)
        feed.publish_alert({"id": 1, "kind": "not an alert"})  # refused, and nothing breaks
        await asyncio.wait_for(sub.wake.wait(), 5)
        return list(sub.pending.values())

    pending = asyncio.run(scenario())
    assert [(a["kind"], a["count"]) for a in pending] == [("inactivity", 2), ("low_battery", 1)]
