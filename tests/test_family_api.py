"""The family API: a daughter sees her mother and nobody else, a coarse position unless a
critical alert is open, today's vital signs by the Asia/Shanghai day, and can ask for a
六助 service and say how she wants to be notified."""

from __future__ import annotations

import doctest
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from family_helpers import PASSWORD, Family, family, latest, raise_alert, user
from fastapi.testclient import TestClient

import api.family_view
from api.app import create_app
from conftest import signed_in_as, test_settings

SECRET = "family-test-signing-key-" + "y" * 32
PRECISE = (34.86712, 110.44731)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(
    database_url: str, db: psycopg.Connection, tmp_path: Path, clock: Clock
) -> Iterator[TestClient]:
    app = create_app(test_settings(home=tmp_path, secret_key=SECRET), database_url)
    app.state.clock = clock
    with TestClient(app) as c:
        yield c


@pytest.fixture
def fam(db: psycopg.Connection, database_url: str) -> Family:
    return family(db, database_url)


def sign_in(client: TestClient, login: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", data={"username": login, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_view_doctests() -> None:
    failed, attempted = doctest.testmod(api.family_view)
    assert attempted > 0 and failed == 0


# --- who sees whom ----------------------------------------------------------------------


def test_a_daughter_sees_only_her_mother(client: TestClient, fam: Family) -> None:
    h = sign_in(client, fam.daughter["login"])
    r = client.get("/api/v1/family/elders", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["elder_id"] for e in body["data"]] == [fam.mother]
    assert body["data"][0]["relation"] == "女儿" and body["data"][0]["community"] == "杏北社区"
    assert client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).status_code == 200


@pytest.mark.parametrize("path", ["now", "alerts", "vitals"])
def test_an_elder_not_linked_is_404_like_one_that_does_not_exist(
    client: TestClient, fam: Family, path: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    other = client.get(f"/api/v1/family/elders/{fam.stranger}/{path}", headers=h)
    missing = client.get(f"/api/v1/family/elders/{fam.stranger + 1000}/{path}", headers=h)
    assert other.status_code == missing.status_code == 404
    assert "not one of yours" in other.json()["detail"]


def test_a_revoked_link_reaches_nothing(client: TestClient, fam: Family) -> None:
    h = sign_in(client, fam.former["login"])
    assert client.get("/api/v1/family/elders", headers=h).json() == {"data": [], "count": 0}
    assert client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).status_code == 404
    r = client.post(f"/api/v1/family/elders/{fam.mother}/orders", json={"kind": "meal"}, headers=h)
    assert r.status_code == 404


def test_staff_and_strangers_are_turned_away_an_admin_may_help(
    client: TestClient, fam: Family, database_url: str
) -> None:
    assert client.get("/api/v1/family/elders").status_code == 401
    staff = user(database_url, "staff", fam.community_id)
    r = client.get("/api/v1/family/elders", headers=sign_in(client, staff["login"]))
    assert r.status_code == 403 and "family" in r.json()["detail"]
    admin = user(database_url, "admin", None)
    h = sign_in(client, admin["login"])
    ids = [e["elder_id"] for e in client.get("/api/v1/family/elders", headers=h).json()["data"]]
    assert {fam.mother, fam.stranger} <= set(ids)
    assert client.get(f"/api/v1/family/elders/{fam.stranger}/now", headers=h).status_code == 200


# --- now: status and position ----------------------------------------------------------------


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_195
    dx = (a[1] - b[1]) * 111_195 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def test_position_is_coarse_until_a_critical_alert_then_precise_with_the_reason(
    client: TestClient, fam: Family, db: psycopg.Connection, clock: Clock, database_url: str
) -> None:
    t = clock.now
    latest(
        db,
        fam.mother,
        last_seen=t,
        pos_ts=t,
        lat=PRECISE[0],
        lon=PRECISE[1],
        acc=8.0,
        battery=64.0,
        worn=True,
        online=True,
        hr=72.0,
        vitals_ts=t,
    )
    h = sign_in(client, fam.daughter["login"])
    now = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()
    assert now["status"] == "safe" and now["open_alerts"] == []
    assert now["battery"] == 64.0 and now["worn"] is True and now["online"] is True
    assert now["last_vitals"]["hr"] == 72.0
    loc = now["location"]
    assert loc["precision"] == "coarse" and "500 m" in loc["reason"]
    off = _metres((loc["lat"], loc["lon"]), PRECISE)
    assert 1 < off <= 500 / math.sqrt(2) + 1, off  # not the door, within the cell
    assert loc["acc_m"] == 500 and loc["area"] == "杏北社区"

    # A low alert is listed but does not make her frightened or the map precise.
    raise_alert(db, fam.mother, "low_battery", "low", t)
    now = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()
    assert now["status"] == "safe" and [a["kind"] for a in now["open_alerts"]] == ["low_battery"]
    assert now["location"]["precision"] == "coarse"

    sos = raise_alert(db, fam.mother, "sos", "critical", t)
    now = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()
    assert now["status"] == "alert"
    loc = now["location"]
    assert loc["precision"] == "precise" and "sos" in loc["reason"]
    assert (loc["lat"], loc["lon"], loc["acc_m"]) == (*PRECISE, 8.0)

    # Resolved: coarse again; the alert list says how it ended.
    r = client.post(
        f"/api/v1/alerts/{sos['id']}/resolve",
        json={"by": "王值班", "outcome": "handled"},
        headers=signed_in_as(client, database_url),
    )
    assert r.status_code == 200, r.text
    now = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()
    assert now["location"]["precision"] == "coarse"
    alerts = client.get(f"/api/v1/family/elders/{fam.mother}/alerts", headers=h).json()
    ended = {a["kind"]: a for a in alerts["data"]}
    assert ended["sos"]["state"] == "resolved" and ended["sos"]["outcome"] == "handled"
    assert "note" not in ended["sos"] and "resolved_by" not in ended["sos"]


def test_an_elder_with_no_data_yet_has_no_position(client: TestClient, fam: Family) -> None:
    h = sign_in(client, fam.daughter["login"])
    now = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()
    assert now["location"] is None and now["last_seen"] is None and now["status"] == "safe"


# --- today, in Asia/Shanghai ------------------------------------------------------------------


def test_today_is_the_shanghai_day_not_the_utc_one(
    client: TestClient, fam: Family, db: psycopg.Connection, clock: Clock
) -> None:
    # Half past midnight in Shanghai is still "yesterday" in UTC (16:30).
    local_midnight, _ = api.family_view.shanghai_day(datetime.now(UTC))
    clock.now = local_midnight + timedelta(minutes=30)
    rows = [
        (local_midnight - timedelta(minutes=10), 1, 90.0, 95.0),  # 23:50 yesterday, local
        (local_midnight + timedelta(minutes=10), 2, 70.0, 97.0),  # 00:10 today
        (local_midnight + timedelta(minutes=20), 3, 74.0, 98.0),  # 00:20 today
    ]
    for ts, seq, hr, spo2 in rows:
        db.execute(
            "INSERT INTO vitals (ts, device_id, seq, elder_id, hr, spo2, sbp, dbp, temp)"
            " VALUES (%s, 'w-1', %s, %s, %s, %s, 128, 82, 36.6)",
            (ts, seq, fam.mother, hr, spo2),
        )
    db.commit()
    h = sign_in(client, fam.daughter["login"])
    today = client.get(f"/api/v1/family/elders/{fam.mother}/now", headers=h).json()["today"]
    assert today["timezone"] == "Asia/Shanghai"
    assert today["day"] == local_midnight.astimezone(api.family_view.SHANGHAI).date().isoformat()
    (hour,) = today["hours"]
    assert datetime.fromisoformat(hour["hour"]) == local_midnight
    assert (hour["samples"], hour["hr"], hour["hr_min"], hour["hr_max"]) == (2, 72.0, 70.0, 74.0)
    assert (hour["sbp"], hour["dbp"], hour["temp"]) == (128.0, 82.0, pytest.approx(36.6))
    # Yesterday by the Shanghai calendar holds the 23:50 reading alone.
    yesterday = (local_midnight - timedelta(hours=1)).astimezone(api.family_view.SHANGHAI).date()
    r = client.get(
        f"/api/v1/family/elders/{fam.mother}/vitals", params={"day": str(yesterday)}, headers=h
    )
    assert [x["hr"] for x in r.json()["hours"]] == [90.0]


# --- requesting a service --------------------------------------------------------------------


def test_a_daughter_requests_a_meal_and_staff_see_it_as_a_family_request(
    client: TestClient, fam: Family, clock: Clock, database_url: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    due = (clock.now + timedelta(days=1)).replace(hour=3, minute=30, second=0)  # 11:30 local
    r = client.post(
        f"/api/v1/family/elders/{fam.mother}/orders",
        json={"kind": "meal", "due_at": due.isoformat(), "notes": "少盐"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["elder_id"], order["kind"], order["source"], order["state"]) == (
        fam.mother,
        "meal",
        "family",
        "requested",
    )
    admin = signed_in_as(client, database_url)
    listed = client.get("/api/v1/orders", params={"elder_id": fam.mother}, headers=admin).json()[
        "items"
    ]
    assert [o["id"] for o in listed] == [order["id"]] and listed[0]["notes"] == "少盐"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"kind": "massage"}, "kind"),
        ({"kind": "emergency", "due_at": "2030-01-01T08:00:00+08:00"}, "dispatched at once"),
        ({"kind": "meal", "due_at": "2030-01-01T08:00:00"}, "timezone"),
        ({"kind": "meal", "elder_id": 1}, "extra"),
    ],
)
def test_bad_service_requests_are_422(
    client: TestClient, fam: Family, body: dict, fragment: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    r = client.post(f"/api/v1/family/elders/{fam.mother}/orders", json=body, headers=h)
    assert r.status_code == 422 and fragment in r.text, r.text


def test_no_order_for_an_elder_not_linked(
    client: TestClient, fam: Family, database_url: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    r = client.post(
        f"/api/v1/family/elders/{fam.stranger}/orders", json={"kind": "meal"}, headers=h
    )
    assert r.status_code == 404
    admin = signed_in_as(client, database_url)
    listed = client.get("/api/v1/orders", params={"elder_id": fam.stranger}, headers=admin)
    assert listed.json()["total"] == 0


# --- notification preferences ------------------------------------------------------------------


def test_notification_preferences_default_then_replace(client: TestClient, fam: Family) -> None:
    h = sign_in(client, fam.daughter["login"])
    r = client.get("/api/v1/family/me/notify", headers=h)
    assert r.json() == {
        "channels": [{"kind": "in_app", "address": None}],
        "quiet_start": None,
        "quiet_end": None,
        "updated_at": None,
    }
    prefs = {
        "channels": [
            {"kind": "sms", "address": "+86 138 0000 0000"},
            {"kind": "wecom", "address": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
        ],
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    r = client.put("/api/v1/family/me/notify", json=prefs, headers=h)
    assert r.status_code == 200, r.text
    again = client.get("/api/v1/family/me/notify", headers=h).json()
    assert again["channels"] == prefs["channels"]
    assert (again["quiet_start"], again["quiet_end"]) == ("22:00:00", "07:00:00")
    assert again["updated_at"] is not None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"channels": [{"kind": "sms", "address": "call me"}]}, "phone number"),
        ({"channels": [{"kind": "email"}]}, "e-mail"),
        ({"channels": [{"kind": "webhook", "address": "http://x.example/hook"}]}, "https://"),
        ({"channels": [{"kind": "pager", "address": "1"}]}, "in_app"),
        ({"channels": [], "quiet_start": "22:00"}, "come together"),
        ({"channels": [{"kind": "in_app"}, {"kind": "in_app"}]}, "at most once"),
    ],
)
def test_bad_notification_preferences_are_422(
    client: TestClient, fam: Family, body: dict, fragment: str
) -> None:
    h = sign_in(client, fam.daughter["login"])
    r = client.put("/api/v1/family/me/notify", json=body, headers=h)
    assert r.status_code == 422 and fragment in r.text, r.text
