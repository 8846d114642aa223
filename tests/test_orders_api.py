"""The 六助 API against the real database: the catalogue, orders and every lifecycle
step (with the check-in, the races and who may do what), caregivers with their shifts
and positions, subscriptions, usage and schedules.

Caregivers here have no shift unless a test gives them one, so the app's own
dispatcher leaves the orders to the hand assignments the tests make.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from conftest import (
    as_admin,
    caregiver_headers,
    family_headers,
    test_settings,
    wait_until,
)
from orders.lifecycle import SYSTEM, Actor
from orders.schedule import SHANGHAI
from storage.orders import apply_step_sync, create_order_sync

HOME = (34.8670, 110.4470)
NEAR = (34.8678, 110.4470)  # about 90 m north of HOME
FAR = (34.8720, 110.4470)  # about 560 m north


@pytest.fixture
def client(database_url: str, db: psycopg.Connection) -> Iterator[TestClient]:
    with TestClient(create_app(test_settings(), database_url)) as c:
        _signed_in.update(client=c, url=database_url)
        yield as_admin(c, database_url)


_signed_in: dict[str, Any] = {}


def as_(role: str, ident: int) -> dict[str, str]:
    """Signed in as caregiver ``ident``, or as a family member linked to elder ``ident``."""
    c, url = _signed_in["client"], _signed_in["url"]
    if role == "caregiver":
        return caregiver_headers(c, url, ident)
    assert role == "family"
    return family_headers(c, url, ident)


def elder(client: TestClient, name: str = "陈秀英", home: tuple[float, float] = HOME) -> int:
    r = client.post(
        "/api/v1/elders",
        json={"name": name, "home_lat": home[0], "home_lon": home[1], "address": "杏北小区3号楼"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def caregiver(client: TestClient, name: str = "王秀兰", skills: tuple[str, ...] = ()) -> int:
    body = {"name": name, "phone": "13800000000", "skills": list(skills or ("meal_delivery",))}
    r = client.post("/api/v1/caregivers", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def order(client: TestClient, elder_id: int, kind: str = "meal", **extra: Any) -> dict[str, Any]:
    r = client.post("/api/v1/orders", json={"elder_id": elder_id, "kind": kind, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def step(
    client: TestClient, order_id: int, action: str, who: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    return client.post(
        f"/api/v1/orders/{order_id}/steps", json={"action": action, **body}, headers=who or {}
    )


def assigned(client: TestClient) -> tuple[dict[str, Any], int]:
    """A meal order assigned by staff to a new caregiver."""
    o = order(client, elder(client))
    c = caregiver(client)
    r = step(client, o["id"], "assign", caregiver_id=c)
    assert r.status_code == 200, r.text
    return r.json(), c


def at_elder(client: TestClient) -> tuple[dict[str, Any], int]:
    """An order whose caregiver is on the way."""
    o, c = assigned(client)
    for a in ("accept", "depart"):
        assert step(client, o["id"], a, as_("caregiver", c)).status_code == 200
    return o, c


# --- who is asking ----------------------------------------------------------------------


def test_who_acts_is_the_signed_in_user_not_a_header(client: TestClient) -> None:
    e = elder(client)
    r = client.post(
        "/api/v1/orders",
        json={"elder_id": e, "kind": "meal"},
        headers={"X-Eldercare-Actor": "caregiver:12"},  # the old header: ignored now
    )
    assert r.status_code == 201
    (req,) = client.get(f"/api/v1/orders/{r.json()['id']}").json()["steps"]
    assert req["actor_role"] == "staff" and req["actor_id"] not in (None, 0, 12)
    anonymous = client.post(
        "/api/v1/orders",
        json={"elder_id": e, "kind": "meal"},
        headers={"Authorization": "", "X-Eldercare-Actor": "staff:1"},
    )
    assert anonymous.status_code == 401


# --- the catalogue ----------------------------------------------------------------------------


def test_the_six_services_with_their_targets(client: TestClient) -> None:
    kinds = {k["kind"]: k for k in client.get("/api/v1/service-kinds").json()}
    assert set(kinds) == {"meal", "cleaning", "bathing", "mobility", "emergency", "medical"}
    sos = kinds["emergency"]
    assert (sos["zh"], sos["en"], sos["accept_target_min"], sos["arrive_target_min"]) == (
        "助急",
        "Emergency",
        2.0,
        15.0,
    )
    assert kinds["meal"]["window_before_min"] == 15 and kinds["meal"]["skills"] == ["meal_delivery"]


# --- requesting and reading ----------------------------------------------------------------


def test_a_request_has_the_contract_shape_and_its_source_is_the_role(client: TestClient) -> None:
    e = elder(client)
    lunch = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    o = order(client, e, due_at=lunch.isoformat(), notes="少盐")
    assert list(o) == [
        "id",
        "elder_id",
        "elder_name",
        "kind",
        "kind_zh",
        "state",
        "source",
        "caregiver_id",
        "caregiver_name",
        "requested_at",
        "due_at",
        "updated_at",
        "version",
        "notes",
        "completion_note",
        "alert_id",
        "escalation_level",
        "dispatch_note",
        "deadlines",
        "breaches",
        "allowed_actions",
        "elder",
    ]
    assert (o["elder_name"], o["kind_zh"], o["state"], o["source"]) == (
        "陈秀英",
        "助餐",
        "requested",
        "staff",
    )
    assert datetime.fromisoformat(o["due_at"]) == lunch and o["notes"] == "少盐"
    window = o["deadlines"]
    assert datetime.fromisoformat(window["window_start"]) == lunch - timedelta(minutes=15)
    assert datetime.fromisoformat(window["window_end"]) == lunch + timedelta(minutes=15)
    assert o["elder"] == {"lat": HOME[0], "lon": HOME[1], "address": "杏北小区3号楼"}
    assert o["allowed_actions"] == ["assign", "cancel"] and o["breaches"] == []
    fam = client.post(
        "/api/v1/orders", json={"elder_id": e, "kind": "cleaning"}, headers=as_("family", e)
    ).json()
    assert fam["source"] == "family" and fam["allowed_actions"] == ["cancel"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "meal"}, "elder_id"),
        ({"kind": "massage"}, "kind"),
        ({"kind": "meal", "due_at": "2026-12-04T11:30:00"}, "due_at"),
        ({"kind": "meal", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_request_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    whole = body if field == "elder_id" else {"elder_id": elder(client), **body}
    r = client.post("/api/v1/orders", json=whole)
    assert r.status_code == 422
    assert field in {str(p) for e in r.json()["detail"] for p in e["loc"]}


def test_an_emergency_cannot_be_booked_ahead(client: TestClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = client.post(
        "/api/v1/orders", json={"elder_id": elder(client), "kind": "emergency", "due_at": later}
    )
    assert r.status_code == 422 and "dispatched at once" in r.text


def test_requests_for_nobody_or_by_the_wrong_people_are_refused(client: TestClient) -> None:
    e = elder(client)
    assert (
        client.post("/api/v1/orders", json={"elder_id": 999999, "kind": "meal"}).status_code == 404
    )
    r = client.post(
        "/api/v1/orders",
        json={"elder_id": e, "kind": "meal"},
        headers=as_("caregiver", caregiver(client)),
    )
    assert r.status_code == 403 and "caregiver" in r.json()["detail"]
    other = elder(client, "李桂兰")
    r = client.post(  # a family member asks for an elder they are not linked to
        "/api/v1/orders", json={"elder_id": other, "kind": "meal"}, headers=as_("family", e)
    )
    assert r.status_code == 404
    assert client.get("/api/v1/orders", params={"elder_id": other}).json()["total"] == 0


def test_the_list_filters_and_pages(client: TestClient) -> None:
    e, f = elder(client), elder(client, "赵德明")
    a = order(client, e, "meal")
    b = order(client, e, "cleaning")
    c = order(client, f, "meal")
    assert step(client, b["id"], "cancel").status_code == 200

    def ids(**params: Any) -> list[int]:
        body = client.get("/api/v1/orders", params=params).json()
        return [o["id"] for o in body["items"]]

    assert ids() == [c["id"], b["id"], a["id"]]
    assert ids(elder_id=e) == [b["id"], a["id"]]
    assert ids(kind="meal") == [c["id"], a["id"]]
    assert ids(state="cancelled") == [b["id"]]
    assert ids(open="true") == [c["id"], a["id"]]
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    assert ids(day=today.isoformat()) == [c["id"], b["id"], a["id"]]
    assert ids(day=(today - timedelta(days=1)).isoformat()) == []
    page = client.get("/api/v1/orders", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [o["id"] for o in page["items"]] == [b["id"]]
    assert client.get("/api/v1/orders", params={"state": "lost"}).status_code == 422
    assert client.get("/api/v1/orders", params={"limit": 0}).status_code == 422


def test_one_order_has_its_steps_and_an_unknown_one_is_404(client: TestClient) -> None:
    o, c = assigned(client)
    got = client.get(f"/api/v1/orders/{o['id']}").json()
    assert [(s["action"], s["from_state"], s["to_state"]) for s in got["steps"]] == [
        ("request", None, "requested"),
        ("assign", "requested", "assigned"),
    ]
    assert got["steps"][1]["caregiver_id"] == c and got["steps"][1]["actor_role"] == "staff"
    assert got["caregiver_name"] == "王秀兰"
    assert client.get("/api/v1/orders/987654").status_code == 404
    assert client.get("/api/v1/orders/0").status_code == 422


# --- the lifecycle ---------------------------------------------------------------------------


def test_a_caregiver_takes_an_order_from_accept_to_complete(client: TestClient) -> None:
    o, c = assigned(client)
    me = as_("caregiver", c)
    mine = client.get(f"/api/v1/orders/{o['id']}", headers=me).json()
    assert mine["allowed_actions"] == ["accept", "reject"]
    v = mine["version"]
    r = step(client, o["id"], "accept", me, version=v)
    assert r.status_code == 200 and r.json()["state"] == "accepted" and r.json()["version"] == v + 1
    assert step(client, o["id"], "depart", me).json()["state"] == "en_route"
    r = step(client, o["id"], "arrive", me, lat=NEAR[0], lon=NEAR[1], acc=12)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_service"
    r = step(client, o["id"], "complete", me, note="午餐已送到，老人状态良好")
    assert r.json()["state"] == "completed"
    assert r.json()["completion_note"] == "午餐已送到，老人状态良好"
    assert r.json()["allowed_actions"] == []
    steps = client.get(f"/api/v1/orders/{o['id']}").json()["steps"]
    assert [s["action"] for s in steps] == [
        "request",
        "assign",
        "accept",
        "depart",
        "arrive",
        "complete",
    ]
    check = steps[4]["detail"]
    assert check["verdict"] == "accepted" and 80 < check["distance_m"] < 100
    assert check["against"] == "home" and steps[4]["actor_id"] == c
    me_now = client.get(f"/api/v1/caregivers/{c}").json()  # the check-in moved their dot
    assert (me_now["last_lat"], me_now["last_lon"], me_now["active_orders"]) == (*NEAR, 0)


def test_another_caregiver_may_not_act_on_the_order(client: TestClient) -> None:
    o, c = assigned(client)
    intruder = caregiver(client, "李建国")
    r = step(client, o["id"], "accept", as_("caregiver", intruder))
    assert r.status_code == 404  # not theirs: as if it did not exist
    r = step(client, o["id"], "cancel", as_("caregiver", c))  # they reject; staff cancel
    assert r.status_code == 403 and "only" in r.json()["detail"]
    assert client.get(f"/api/v1/orders/{o['id']}").json()["state"] == "assigned"


def test_a_step_the_state_does_not_allow_is_a_409_with_the_state(client: TestClient) -> None:
    o, c = assigned(client)
    r = step(client, o["id"], "complete", as_("caregiver", c))
    assert r.status_code == 409
    body = r.json()
    assert body["state"] == "assigned" and body["allowed"] == [
        "accept",
        "cancel",
        "expire",
        "reject",
    ]
    assert body["version"] == o["version"] and "cannot complete" in body["detail"]


def test_a_stale_version_is_a_409(client: TestClient) -> None:
    o, c = assigned(client)
    me = as_("caregiver", c)
    assert step(client, o["id"], "accept", me, version=o["version"]).status_code == 200
    r = step(client, o["id"], "depart", me, version=o["version"])
    assert r.status_code == 409
    assert r.json()["state"] == "accepted" and r.json()["version"] == o["version"] + 1
    assert "changed" in r.json()["detail"]


def test_of_two_concurrent_steps_one_wins_and_the_other_sees_the_new_state(
    client: TestClient, db: psycopg.Connection, database_url: str
) -> None:
    o, c = assigned(client)
    me = as_("caregiver", c)
    # Hold the row so that both requests are inside the database before either acts.
    db.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE", (o["id"],))
    responses: list[httpx.Response] = []

    def post(action: str) -> None:
        responses.append(step(client, o["id"], action, me))

    threads = [
        threading.Thread(target=post, args=(a,)) for a in ("accept", "accept")
    ]  # a double tap
    for t in threads:
        t.start()
    with psycopg.connect(database_url, autocommit=True) as watch:
        wait_until(
            lambda: (
                watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                >= 2
            )
        )
    db.rollback()
    for t in threads:
        t.join(30)
    assert sorted(r.status_code for r in responses) == [200, 409]
    won = next(r.json() for r in responses if r.status_code == 200)
    lost = next(r.json() for r in responses if r.status_code == 409)
    assert lost["state"] == won["state"] and lost["version"] == won["version"]
    steps = client.get(f"/api/v1/orders/{o['id']}").json()["steps"]
    assert len(steps) == 3  # request, assign and the one that won


def test_a_check_in_too_far_from_the_elder_is_refused_with_the_distance(
    client: TestClient,
) -> None:
    o, c = at_elder(client)
    me = as_("caregiver", c)
    r = step(client, o["id"], "arrive", me, lat=FAR[0], lon=FAR[1], acc=10)
    assert r.status_code == 409
    body = r.json()
    assert 540 < body["distance_m"] < 580 and body["verdict"] == "too_far"
    assert "150 m" in body["detail"] and body["state"] == "en_route"
    coarse = step(client, o["id"], "arrive", me, lat=NEAR[0], lon=NEAR[1], acc=900)
    assert coarse.status_code == 409 and coarse.json()["verdict"] == "coarse_fix"
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    stale = step(client, o["id"], "arrive", me, lat=NEAR[0], lon=NEAR[1], acc=10, ts=old)
    assert stale.status_code == 409 and stale.json()["verdict"] == "stale_fix"
    assert client.get(f"/api/v1/orders/{o['id']}").json()["state"] == "en_route"


def test_arriving_needs_a_position_from_the_caregiver_not_from_staff(client: TestClient) -> None:
    o, c = at_elder(client)
    r = step(client, o["id"], "arrive", as_("caregiver", c))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "lat"]
    r = step(client, o["id"], "arrive", as_("caregiver", c), lat=NEAR[0])
    assert r.status_code == 422 and "lat and lon" in r.text
    r = step(client, o["id"], "arrive")  # staff, on the phone with a caregiver whose battery died
    assert r.status_code == 200 and r.json()["state"] == "in_service"
    steps = client.get(f"/api/v1/orders/{o['id']}").json()["steps"]
    assert steps[-1]["detail"]["check_in"].startswith("recorded by staff")


def test_bad_steps_are_422_or_404(client: TestClient) -> None:
    o, _ = assigned(client)
    assert step(client, o["id"], "teleport").status_code == 422
    fresh = order(client, elder(client))
    r = step(client, fresh["id"], "assign")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "caregiver_id"]
    assert step(client, fresh["id"], "assign", caregiver_id=424242).status_code == 404
    assert step(client, 999999, "cancel").status_code == 404
    assert step(client, fresh["id"], "cancel", version=0).status_code == 422


def test_a_rejected_order_can_be_reassigned_but_not_to_who_declined(client: TestClient) -> None:
    o, c = assigned(client)
    r = step(client, o["id"], "reject", as_("caregiver", c), note="家中有事")
    assert r.json()["state"] == "rejected" and r.json()["caregiver_id"] is None
    other = caregiver(client, "张桂英")
    r = step(client, o["id"], "assign", caregiver_id=other)
    assert r.status_code == 200 and r.json()["caregiver_id"] == other


# --- caregivers ---------------------------------------------------------------------------


def test_caregivers_are_created_listed_and_changed(client: TestClient) -> None:
    r = client.post(
        "/api/v1/caregivers",
        json={"name": "刘建华", "skills": ["first_aid", "nursing", "first_aid"], "max_load": 2},
    )
    assert r.status_code == 201
    c = r.json()
    assert c["skills"] == ["first_aid", "nursing"] and c["on_shift"] is False
    assert c["active_orders"] == 0 and c["last_lat"] is None
    got = client.patch(f"/api/v1/caregivers/{c['id']}", json={"phone": "13912345678"}).json()
    assert got["phone"] == "13912345678" and got["name"] == "刘建华"
    assert [x["id"] for x in client.get("/api/v1/caregivers").json()] == [c["id"]]
    assert client.get("/api/v1/caregivers/777").status_code == 404
    assert client.patch("/api/v1/caregivers/777", json={"phone": "1"}).status_code == 404
    bad = client.post("/api/v1/caregivers", json={"name": "x", "skills": ["juggling"]})
    assert bad.status_code == 422 and "skills" in bad.text
    assert client.post("/api/v1/caregivers", json={"name": ""}).status_code == 422
    assert client.post("/api/v1/caregivers", json={"name": "x", "max_load": 99}).status_code == 422


def test_shifts_put_a_caregiver_on_shift(client: TestClient) -> None:
    c = caregiver(client, skills=("housekeeping",))
    now = datetime.now(UTC)
    r = client.post(
        f"/api/v1/caregivers/{c}/shifts",
        json={
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=7)).isoformat(),
        },
    )
    assert r.status_code == 201
    shift = r.json()
    assert client.get(f"/api/v1/caregivers/{c}").json()["on_shift"] is True
    assert [
        x["id"] for x in client.get("/api/v1/caregivers", params={"on_shift": True}).json()
    ] == [c]
    assert client.get("/api/v1/caregivers", params={"on_shift": False}).json() == []
    assert [s["id"] for s in client.get(f"/api/v1/caregivers/{c}/shifts").json()] == [shift["id"]]
    backwards = {"starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()}
    assert client.post(f"/api/v1/caregivers/{c}/shifts", json=backwards).status_code == 422
    naive = {"starts_at": "2026-12-04T08:00:00"}
    r = client.post(f"/api/v1/caregivers/{c}/shifts", json=naive)
    assert r.status_code == 422 and "starts_at" in r.text
    assert (
        client.post(
            "/api/v1/caregivers/555/shifts", json={"starts_at": now.isoformat()}
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/caregivers/{c}/shifts/{shift['id']}").status_code == 204
    assert client.delete(f"/api/v1/caregivers/{c}/shifts/{shift['id']}").status_code == 404
    assert client.get(f"/api/v1/caregivers/{c}").json()["on_shift"] is False


def test_a_position_moves_the_caregiver_and_an_older_one_does_not(client: TestClient) -> None:
    c = caregiver(client)
    now = datetime.now(UTC).replace(microsecond=0)
    r = client.post(
        f"/api/v1/caregivers/{c}/position",
        json={"lat": NEAR[0], "lon": NEAR[1], "acc": 8, "ts": now.isoformat()},
    )
    assert r.status_code == 204
    late = {"lat": FAR[0], "lon": FAR[1], "acc": 8, "ts": (now - timedelta(minutes=5)).isoformat()}
    assert client.post(f"/api/v1/caregivers/{c}/position", json=late).status_code == 204
    got = client.get(f"/api/v1/caregivers/{c}").json()
    assert (got["last_lat"], got["last_lon"], got["last_acc"]) == (NEAR[0], NEAR[1], 8)
    assert datetime.fromisoformat(got["last_pos_at"]) == now
    assert (
        client.post(f"/api/v1/caregivers/{c}/position", json={"lat": 91, "lon": 0}).status_code
        == 422
    )
    assert client.post(f"/api/v1/caregivers/{c}/position", json={"lat": 1}).status_code == 422
    assert (
        client.post("/api/v1/caregivers/999/position", json={"lat": 1, "lon": 1}).status_code == 404
    )


def test_a_caregivers_day_lists_open_orders_first_then_what_they_finished_today(
    client: TestClient, db: psycopg.Connection
) -> None:
    done, c = at_elder(client)
    me = as_("caregiver", c)
    step(client, done["id"], "arrive", me, lat=HOME[0], lon=HOME[1], acc=5)
    assert step(client, done["id"], "complete", me).status_code == 200
    todo = order(client, elder(client, "孙玉珍"))
    step(client, todo["id"], "assign", caregiver_id=c)
    # Requested two days ago, finished yesterday: not today's work.
    e = elder(client, "钱玉梅")
    now = datetime.now(UTC)
    old, _ = create_order_sync(
        db, elder_id=e, kind="meal", actor=Actor("staff", 1), at=now - timedelta(days=2)
    )
    for action, who in (("assign", SYSTEM), ("cancel", Actor("staff", 1))):
        cg = c if action == "assign" else None
        apply_step_sync(db, old, action, who, now - timedelta(days=1), caregiver_id=cg)
    # Requested yesterday, called off just now: today's, most recent first.
    late, _ = create_order_sync(
        db, elder_id=e, kind="meal", actor=Actor("staff", 1), at=now - timedelta(days=1)
    )
    apply_step_sync(db, late, "assign", SYSTEM, now - timedelta(days=1), caregiver_id=c)
    apply_step_sync(db, late, "cancel", Actor("staff", 1), datetime.now(UTC))
    db.commit()
    day = client.get(f"/api/v1/caregivers/{c}/today", headers=me).json()
    assert [o["id"] for o in day["items"]] == [todo["id"], late, done["id"]]
    assert day["items"][0]["allowed_actions"] == ["accept", "reject"]
    assert client.get("/api/v1/caregivers/4040/today").status_code == 404


# --- subscriptions, usage, schedules ---------------------------------------------------------


def test_a_subscription_and_the_months_usage(client: TestClient) -> None:
    e = elder(client)
    assert client.get(f"/api/v1/elders/{e}/subscription").json() is None
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    first = today.replace(day=1)
    r = client.put(
        f"/api/v1/elders/{e}/subscription",
        json={"plan_code": "basic-100", "starts_on": first.isoformat()},
    )
    assert r.status_code == 200, r.text
    sub = client.get(f"/api/v1/elders/{e}/subscription").json()
    assert (sub["plan_code"], sub["price_fen"], sub["allowances"]["meal"]) == (
        "basic-100",
        10000,
        4,
    )
    month = f"{today:%Y-%m}"
    u = client.get(f"/api/v1/elders/{e}/usage", params={"month": month}).json()
    assert (u["month"], u["plan_code"], u["fee_fen"], u["extra_fen"]) == (
        month,
        "basic-100",
        10000,
        0,
    )
    meal = next(x for x in u["lines"] if x["kind"] == "meal")
    assert (meal["used"], meal["included"], meal["remaining"], meal["kind_zh"]) == (0, 4, 4, "助餐")
    assert client.get(f"/api/v1/elders/{e}/usage", params={"month": "2026-13"}).status_code == 422
    nope = {"plan_code": "gold-999", "starts_on": first.isoformat()}
    assert client.put(f"/api/v1/elders/{e}/subscription", json=nope).status_code == 404
    back = {"plan_code": "basic-100", "starts_on": "2026-12-10", "ends_on": "2026-12-01"}
    assert client.put(f"/api/v1/elders/{e}/subscription", json=back).status_code == 422
    assert client.get("/api/v1/elders/99999/subscription").status_code == 404
    assert client.get("/api/v1/elders/99999/usage").status_code == 404


def test_a_completed_service_counts_against_the_plan(client: TestClient) -> None:
    o, c = at_elder(client)
    e = o["elder_id"]
    me = as_("caregiver", c)
    step(client, o["id"], "arrive", me, lat=HOME[0], lon=HOME[1], acc=5)
    step(client, o["id"], "complete", me)
    u = client.get(f"/api/v1/elders/{e}/usage").json()
    assert u["plan_code"] is None  # no plan: charged per service
    meal = next(x for x in u["lines"] if x["kind"] == "meal")
    assert (meal["used"], meal["extra"], meal["extra_fen"]) == (1, 1, 1200)
    assert u["total_fen"] == 1200


def test_schedules_are_created_listed_and_stopped(client: TestClient) -> None:
    e = elder(client)
    r = client.post(
        f"/api/v1/elders/{e}/schedules",
        json={"kind": "meal", "weekdays": "Mon-Fri", "local_time": "11:30"},
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["kind"], s["weekdays"], s["local_time"], s["active"]) == (
        "meal",
        "mon-fri",
        "11:30",
        True,
    )
    assert [x["id"] for x in client.get(f"/api/v1/elders/{e}/schedules").json()] == [s["id"]]
    assert client.delete(f"/api/v1/schedules/{s['id']}").status_code == 204
    assert client.get(f"/api/v1/elders/{e}/schedules").json() == []
    assert client.delete(f"/api/v1/schedules/{s['id']}").status_code == 404
    for bad, field in (
        ({"kind": "emergency", "weekdays": "mon", "local_time": "09:00"}, "kind"),
        ({"kind": "meal", "weekdays": "someday", "local_time": "09:00"}, "weekdays"),
        ({"kind": "meal", "weekdays": "mon", "local_time": "25:00"}, "local_time"),
    ):
        r = client.post(f"/api/v1/elders/{e}/schedules", json=bad)
        assert r.status_code == 422 and field in {
            str(p) for x in r.json()["detail"] for p in x["loc"]
        }
    ok = {"kind": "meal", "weekdays": "mon", "local_time": "09:00"}
    assert client.post("/api/v1/elders/99999/schedules", json=ok).status_code == 404


# --- dispatch by hand and the live feed ------------------------------------------------------


def on_shift(client: TestClient, c: int) -> None:
    now = datetime.now(UTC)
    r = client.post(
        f"/api/v1/caregivers/{c}/shifts",
        json={"starts_at": (now - timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 201


def test_staff_dispatch_by_hand_and_hear_why_when_nobody_can_go(client: TestClient) -> None:
    o = order(client, elder(client), "bathing")
    r = client.post(f"/api/v1/orders/{o['id']}/dispatch")
    assert r.status_code == 409
    assert r.json()["detail"] == "no caregiver available: nobody_qualified"
    assert r.json()["funnel"] == {
        "total": 0,
        "qualified": 0,
        "on_shift": 0,
        "not_declined": 0,
        "with_room": 0,
    }
    assert client.get(f"/api/v1/orders/{o['id']}").json()["dispatch_note"]["reason"] == (
        "nobody_qualified"
    )
    c = caregiver(client, "周丽华", skills=("bathing",))
    near = {"lat": NEAR[0], "lon": NEAR[1], "acc": 10}
    assert client.post(f"/api/v1/caregivers/{c}/position", json=near).status_code == 204
    # Right after one of the app's own dispatcher passes, so that staff act before the next.
    passes = client.app.state.dispatcher.passes  # type: ignore[attr-defined]
    wait_until(lambda: client.app.state.dispatcher.passes > passes)  # type: ignore[attr-defined]
    on_shift(client, c)
    r = client.post(f"/api/v1/orders/{o['id']}/dispatch")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["state"], got["caregiver_id"], got["dispatch_note"]) == ("assigned", c, None)
    assign = client.get(f"/api/v1/orders/{o['id']}").json()["steps"][-1]
    assert (assign["action"], assign["actor_role"]) == ("assign", "staff")
    assert 80 < assign["detail"]["distance_m"] < 100
    again = client.post(f"/api/v1/orders/{o['id']}/dispatch")
    assert again.status_code == 409 and again.json()["state"] == "assigned"
    r = client.post(f"/api/v1/orders/{o['id']}/dispatch", headers=as_("caregiver", c))
    assert r.status_code == 403
    assert client.post("/api/v1/orders/55555/dispatch").status_code == 404


def test_a_declined_order_is_offered_to_the_next_caregiver_at_once(client: TestClient) -> None:
    first = caregiver(client, "吴建军", skills=("housekeeping",))
    second = caregiver(client, "郑美玲", skills=("housekeeping",))
    for c, where in ((first, NEAR), (second, FAR)):
        client.post(f"/api/v1/caregivers/{c}/position", json={"lat": where[0], "lon": where[1]})
        on_shift(client, c)
    o = order(client, elder(client), "cleaning")

    def offered_to(c: int) -> bool:
        got = client.get(f"/api/v1/orders/{o['id']}").json()
        return got["state"] == "assigned" and got["caregiver_id"] == c

    wait_until(lambda: offered_to(first), timeout=10)  # the nearer one first
    # Declined right after one of the dispatcher's 3-second passes: the next offer comes
    # at once (the step's commit wakes the dispatcher), not at the next pass.
    dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]
    passes = dispatcher.passes
    wait_until(lambda: dispatcher.passes > passes)
    t0 = datetime.now(UTC)
    assert step(client, o["id"], "reject", as_("caregiver", first)).status_code == 200
    wait_until(lambda: offered_to(second), timeout=10, interval=0.02)
    assert (datetime.now(UTC) - t0).total_seconds() < 2.0


def test_order_and_caregiver_changes_are_pushed_to_the_dashboards(client: TestClient) -> None:
    o, c = assigned(client)
    with client.websocket_connect("/ws/live") as ws:
        assert step(client, o["id"], "accept", as_("caregiver", c)).status_code == 200
        pushed = ws.receive_json()
        # The assignment's own push may still be on its way: the newest state comes last.
        while pushed["type"] != "order" or pushed["order"]["state"] != "accepted":
            pushed = ws.receive_json()
        assert pushed["order"]["id"] == o["id"]
        rest = client.get(f"/api/v1/orders/{o['id']}").json()
        del rest["steps"]
        # The push shows the actions staff may take; the rest is the REST order.
        assert {k: v for k, v in pushed["order"].items() if k != "breaches"} == {
            k: v for k, v in rest.items() if k != "breaches"
        }
        fix = {"lat": NEAR[0], "lon": NEAR[1], "acc": 6}
        assert client.post(f"/api/v1/caregivers/{c}/position", json=fix).status_code == 204
        moved = ws.receive_json()
        while moved["type"] != "caregiver":
            moved = ws.receive_json()
        assert moved["caregiver"]["id"] == c and moved["caregiver"]["lat"] == NEAR[0]
        assert moved["caregiver"]["active_orders"] == 1
