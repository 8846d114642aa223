"""Who may call what, on whose objects: every route × every kind of user × own or foreign.

The routes come from the app itself, so a route added without a line in :data:`RULES`
fails :func:`test_every_route_is_classified`.  For each classified route and each user
below, a fresh little world is made (two communities, A and B, each with an elder
wearing a device, an alert, an order assigned to the community's caregiver, a shift and
a schedule), the route is called on A's object and on B's, and the answer must be:

- 401 for nobody signed in (public routes excepted),
- 403 for a role whose permissions lack the verb,
- 404 for an object outside the caller's scope (the same as an unknown id),
- success otherwise (2xx; 409 where a second user's step finds the order moved on).

List routes must never hold an id outside the caller's scope, and ``/ws/live`` must
send each user only their scope's positions, alerts, orders and caregivers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from alerts.core import Action, Finding, Severity
from api.app import create_app
from conftest import ensure_user, sign_in, test_settings
from storage.alerts import record_findings

ANON, ADMIN = "anonymous", "admin"
STAFF_A, STAFF_B = "staff_a", "staff_b"
CARER, CARER_IDLE = "caregiver_with_order", "caregiver_without_order"
FAMILY, FAMILY_UNLINKED, FAMILY_REVOKED = "family_linked", "family_not_linked", "family_revoked"
USERS = (ANON, STAFF_A, STAFF_B, CARER, CARER_IDLE, FAMILY, FAMILY_UNLINKED, FAMILY_REVOKED, ADMIN)

EVERYONE = frozenset(USERS) - {ANON}
STAFF = frozenset({ADMIN, STAFF_A, STAFF_B})
ADMIN_ONLY = frozenset({ADMIN})
CAREGIVERS = frozenset({CARER, CARER_IDLE})
FAMILIES = frozenset({FAMILY, FAMILY_UNLINKED, FAMILY_REVOKED})
READERS = EVERYONE  # elders, readings, alerts, orders: every role, within its scope

# Who sees community A's objects (B's: the administrator and B's staff).
SEES_A: dict[str, frozenset[str]] = {
    "elder": frozenset({ADMIN, STAFF_A, CARER, FAMILY}),
    "device": frozenset({ADMIN, STAFF_A}),
    "caregiver": frozenset({ADMIN, STAFF_A, CARER}),
}
SEES_A |= {k: SEES_A["elder"] for k in ("alert", "order", "schedule")}
SEES_A["shift"] = SEES_A["caregiver"]
SEES_A["community"] = frozenset({ADMIN, STAFF_A})
SEES_B = frozenset({ADMIN, STAFF_B})


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str] | None  # None: public, no sign-in needed
    obj: str | None = None  # the path's (or body's) object: whose it is decides 404
    body: Callable[[World, str, str], Any] | None = None  # (world, side, user) -> JSON
    lists: str | None = None  # a list route: the kind of id its answer holds
    fresh_session: bool = False  # the call ends the session (sign-out)


def _order_step(w: World, side: str, user: str) -> dict[str, Any]:
    # The caregiver takes up their offered order; the others cancel it.
    return {"action": "accept" if user in CAREGIVERS else "cancel"}


def _duty(w: World, side: str, user: str) -> dict[str, Any]:
    # The side's own staff member goes on duty (a roster names people of its community).
    return {"user_id": w.ids[side]["staff_user"], "starts_at": datetime.now(UTC).isoformat()}


PAGES = Rule(None)
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/openapi.json"): PAGES,
    ("GET", "/docs"): PAGES,
    ("GET", "/docs/oauth2-redirect"): PAGES,
    ("GET", "/redoc"): PAGES,
    ("GET", "/"): PAGES,
    ("GET", "/caregiver/"): PAGES,
    ("GET", "/login/"): PAGES,
    ("MOUNT", "/static"): PAGES,
    ("GET", "/api/v1/health"): Rule(None),
    # Prometheus convention: counts and latencies only, nothing about a person.
    ("GET", "/metrics"): Rule(None),
    ("POST", "/api/v1/auth/login"): Rule(None),
    ("POST", "/api/v1/auth/refresh"): Rule(None),
    ("POST", "/api/v1/auth/logout"): Rule(EVERYONE, fresh_session=True),
    ("GET", "/api/v1/auth/me"): Rule(EVERYONE),
    # registry: reading scoped, writing the administrator's
    ("GET", "/api/v1/elders"): Rule(READERS, lists="elder"),
    ("POST", "/api/v1/elders"): Rule(ADMIN_ONLY, body=lambda w, s, u: {"name": "新老人"}),
    ("GET", "/api/v1/elders/{elder_id}"): Rule(READERS, "elder"),
    ("PATCH", "/api/v1/elders/{elder_id}"): Rule(
        ADMIN_ONLY, "elder", body=lambda w, s, u: {"notes": "改"}
    ),
    ("DELETE", "/api/v1/elders/{elder_id}"): Rule(ADMIN_ONLY, "elder"),
    ("GET", "/api/v1/devices"): Rule(STAFF, lists="device"),
    ("POST", "/api/v1/devices"): Rule(
        ADMIN_ONLY, body=lambda w, s, u: {"id": f"new-{uuid.uuid4().hex[:8]}"}
    ),
    ("GET", "/api/v1/devices/{device_id}"): Rule(STAFF, "device"),
    ("PATCH", "/api/v1/devices/{device_id}"): Rule(
        ADMIN_ONLY, "device", body=lambda w, s, u: {"model": "X1"}
    ),
    ("DELETE", "/api/v1/devices/{device_id}"): Rule(ADMIN_ONLY, "device"),
    ("POST", "/api/v1/devices/{device_id}/pair"): Rule(
        ADMIN_ONLY, "device", body=lambda w, s, u: {"elder_id": w.ids[s]["elder"]}
    ),
    ("POST", "/api/v1/devices/{device_id}/unpair"): Rule(ADMIN_ONLY, "device"),
    ("POST", "/api/v1/devices/{device_id}/credentials"): Rule(ADMIN_ONLY, "device"),
    ("GET", "/api/v1/devices/{device_id}/credentials"): Rule(ADMIN_ONLY, "device"),
    ("DELETE", "/api/v1/devices/{device_id}/credentials"): Rule(ADMIN_ONLY, "device"),
    ("GET", "/api/v1/quarantine"): Rule(ADMIN_ONLY),
    # readings
    ("GET", "/api/v1/config"): Rule(EVERYONE),
    ("GET", "/api/v1/community"): Rule(EVERYONE),
    ("GET", "/api/v1/latest"): Rule(READERS, lists="latest"),
    ("GET", "/api/v1/elders/{elder_id}/vitals"): Rule(READERS, "elder"),
    ("GET", "/api/v1/elders/{elder_id}/positions"): Rule(READERS, "elder"),
    # alerts
    ("GET", "/api/v1/alerts"): Rule(READERS, lists="alert"),
    ("GET", "/api/v1/alerts/stats"): Rule(READERS, lists="stats"),
    ("GET", "/api/v1/alerts/{alert_id}"): Rule(READERS, "alert"),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): Rule(
        STAFF, "alert", body=lambda w, s, u: {"by": "值班"}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): Rule(
        STAFF, "alert", body=lambda w, s, u: {"by": "值班", "outcome": "handled"}
    ),
    ("GET", "/api/v1/elders/{elder_id}/thresholds"): Rule(READERS, "elder"),
    ("PUT", "/api/v1/elders/{elder_id}/thresholds"): Rule(
        STAFF, "elder", body=lambda w, s, u: {"by": "值班", "thresholds": {}}
    ),
    # 六助 orders
    ("GET", "/api/v1/service-kinds"): Rule(EVERYONE),
    ("POST", "/api/v1/orders"): Rule(
        STAFF | FAMILIES,
        "elder",
        body=lambda w, s, u: {"elder_id": w.ids[s]["elder"], "kind": "cleaning"},
    ),
    ("GET", "/api/v1/orders"): Rule(READERS, lists="order"),
    ("GET", "/api/v1/orders/{order_id}"): Rule(READERS, "order"),
    ("POST", "/api/v1/orders/{order_id}/steps"): Rule(
        STAFF | CAREGIVERS | FAMILIES, "order", body=_order_step
    ),
    ("POST", "/api/v1/orders/{order_id}/dispatch"): Rule(STAFF, "order", body=lambda w, s, u: {}),
    # caregivers
    ("GET", "/api/v1/caregivers"): Rule(STAFF | CAREGIVERS, lists="caregiver"),
    ("POST", "/api/v1/caregivers"): Rule(STAFF, body=lambda w, s, u: {"name": "新护理员"}),
    ("GET", "/api/v1/caregivers/{caregiver_id}"): Rule(STAFF | CAREGIVERS, "caregiver"),
    ("PATCH", "/api/v1/caregivers/{caregiver_id}"): Rule(
        STAFF, "caregiver", body=lambda w, s, u: {"phone": "13900000000"}
    ),
    ("POST", "/api/v1/caregivers/{caregiver_id}/shifts"): Rule(
        STAFF, "caregiver", body=lambda w, s, u: {"starts_at": "2026-01-05T00:00:00Z"}
    ),
    ("GET", "/api/v1/caregivers/{caregiver_id}/shifts"): Rule(STAFF | CAREGIVERS, "caregiver"),
    ("DELETE", "/api/v1/caregivers/{caregiver_id}/shifts/{shift_id}"): Rule(STAFF, "shift"),
    ("POST", "/api/v1/caregivers/{caregiver_id}/position"): Rule(
        ADMIN_ONLY | CAREGIVERS,
        "caregiver",
        body=lambda w, s, u: {"lat": 34.867, "lon": 110.447, "acc": 10},
    ),
    ("GET", "/api/v1/caregivers/{caregiver_id}/today"): Rule(STAFF | CAREGIVERS, "caregiver"),
    # plans and reports
    ("GET", "/api/v1/elders/{elder_id}/subscription"): Rule(READERS, "elder"),
    ("PUT", "/api/v1/elders/{elder_id}/subscription"): Rule(
        STAFF, "elder", body=lambda w, s, u: {"plan_code": "basic-100", "starts_on": "2026-12-01"}
    ),
    ("GET", "/api/v1/elders/{elder_id}/usage"): Rule(READERS, "elder"),
    ("GET", "/api/v1/elders/{elder_id}/schedules"): Rule(READERS, "elder"),
    ("POST", "/api/v1/elders/{elder_id}/schedules"): Rule(
        STAFF,
        "elder",
        body=lambda w, s, u: {"kind": "meal", "weekdays": "mon-fri", "local_time": "11:30"},
    ),
    ("DELETE", "/api/v1/schedules/{schedule_id}"): Rule(STAFF, "schedule"),
    ("GET", "/api/v1/reports/usage"): Rule(STAFF, lists="report"),
    ("WS", "/ws/live"): Rule(EVERYONE),  # tested by test_the_live_socket_sends_only_the_scope
    # the family page's own routes (an administrator may help a family)
    ("GET", "/family/"): PAGES,
    ("GET", "/api/v1/family/elders"): Rule(ADMIN_ONLY | FAMILIES, lists="family"),
    ("GET", "/api/v1/family/elders/{elder_id}/now"): Rule(ADMIN_ONLY | FAMILIES, "elder"),
    ("GET", "/api/v1/family/elders/{elder_id}/vitals"): Rule(ADMIN_ONLY | FAMILIES, "elder"),
    ("GET", "/api/v1/family/elders/{elder_id}/alerts"): Rule(ADMIN_ONLY | FAMILIES, "elder"),
    ("POST", "/api/v1/family/elders/{elder_id}/orders"): Rule(
        ADMIN_ONLY | FAMILIES, "elder", body=lambda w, s, u: {"kind": "cleaning"}
    ),
    ("GET", "/api/v1/family/me/notify"): Rule(ADMIN_ONLY | FAMILIES),
    ("PUT", "/api/v1/family/me/notify"): Rule(
        ADMIN_ONLY | FAMILIES, body=lambda w, s, u: {"channels": []}
    ),
    # notifications: the ladder and roster are the community's staff's; an alert's
    # delivery attempts follow the alert; channels and inbox are one's own
    ("GET", "/api/v1/communities/{community_id}/ladder"): Rule(STAFF, "community"),
    ("PUT", "/api/v1/communities/{community_id}/ladder"): Rule(
        STAFF, "community", body=lambda w, s, u: {"steps": [{"audience": "duty", "wait_s": 60}]}
    ),
    ("GET", "/api/v1/communities/{community_id}/duty"): Rule(STAFF, "community"),
    ("POST", "/api/v1/communities/{community_id}/duty"): Rule(STAFF, "community", body=_duty),
    ("GET", "/api/v1/alerts/{alert_id}/notifications"): Rule(READERS, "alert"),
    ("GET", "/api/v1/me/channels"): Rule(EVERYONE),
    ("PUT", "/api/v1/me/channels"): Rule(EVERYONE, body=lambda w, s, u: {"channels": []}),
    ("GET", "/api/v1/me/notifications"): Rule(EVERYONE),
    ("POST", "/api/v1/me/notifications/read"): Rule(EVERYONE, body=lambda w, s, u: {}),
    # the audit trail: the centre's
    ("GET", "/api/v1/audit"): Rule(STAFF),
    ("GET", "/api/v1/audit.csv"): Rule(STAFF),
}


# --- the routes the app has ---------------------------------------------------------------


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, looking inside included routers."""

    def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
        for r in routes:
            if hasattr(r, "original_router"):  # FastAPI >= 0.16x keeps included routers
                yield from walk(r.original_router.routes, prefix + r.include_context.prefix)
                continue
            path = prefix + r.path
            if type(r).__name__ == "Mount":
                yield "MOUNT", path
            elif not hasattr(r, "methods"):
                yield "WS", path
            else:
                for m in r.methods - {"HEAD"}:
                    yield m, path

    return set(walk(app.routes))


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> kind -> id
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> stored alert


@dataclass
class Cast:
    client: TestClient
    database_url: str
    communities: dict[str, int]
    caregivers: dict[str, int]  # "A", "B", "idle"
    users: dict[str, int]
    logins: dict[str, str]
    headers: dict[str, dict[str, str]]


def _one(conn: psycopg.Connection, query: str, args: tuple[Any, ...]) -> int:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def cast(database_url: str) -> Iterator[Cast]:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "TRUNCATE elders, devices, communities, caregivers, users, login_attempts"
            " RESTART IDENTITY CASCADE"
        )
        comm = {
            s: _one(conn, "INSERT INTO communities (name) VALUES (%s) RETURNING id", (f"社区{s}",))
            for s in "AB"
        }
        carers = {
            key: _one(
                conn,
                "INSERT INTO caregivers (name, community_id, skills) VALUES (%s, %s, %s)"
                " RETURNING id",
                (f"护理员{key}", comm[c], ["housekeeping", "meal_delivery"]),
            )
            for key, c in (("A", "A"), ("B", "B"), ("idle", "A"))
        }
        conn.commit()
        users = {
            ADMIN: ensure_user(conn, "m-admin", "admin"),
            STAFF_A: ensure_user(conn, "m-staff-a", "staff", community_id=comm["A"]),
            STAFF_B: ensure_user(conn, "m-staff-b", "staff", community_id=comm["B"]),
            CARER: ensure_user(
                conn, "m-carer", "caregiver", community_id=comm["A"], caregiver_id=carers["A"]
            ),
            CARER_IDLE: ensure_user(
                conn, "m-idle", "caregiver", community_id=comm["A"], caregiver_id=carers["idle"]
            ),
            FAMILY: ensure_user(conn, "m-family", "family", community_id=comm["A"]),
            FAMILY_UNLINKED: ensure_user(conn, "m-stranger", "family", community_id=comm["A"]),
            FAMILY_REVOKED: ensure_user(conn, "m-revoked", "family", community_id=comm["A"]),
        }
        users["carer_B"] = ensure_user(
            conn, "m-carer-b", "caregiver", community_id=comm["B"], caregiver_id=carers["B"]
        )
    logins = {
        ADMIN: "m-admin",
        STAFF_A: "m-staff-a",
        STAFF_B: "m-staff-b",
        CARER: "m-carer",
        CARER_IDLE: "m-idle",
        FAMILY: "m-family",
        FAMILY_UNLINKED: "m-stranger",
        FAMILY_REVOKED: "m-revoked",
    }
    app = create_app(test_settings(live_interval_s=0.1), database_url)
    with TestClient(app) as client:
        client.app.state.hub.ping_every_s = 0.2  # type: ignore[attr-defined]
        headers = {u: sign_in(client, name) for u, name in logins.items()}
        headers[ANON] = {}
        yield Cast(client, database_url, comm, carers, users, logins, headers)


def make_world(cast: Cast) -> World:
    """Fresh objects in A and B: what one route is tried on."""
    w = World()
    admin = cast.headers[ADMIN]
    now = datetime.now(UTC)
    with psycopg.connect(cast.database_url) as conn:
        # Only this world's objects: a list then holds exactly what the scope reaches.
        # (DELETE, not TRUNCATE: the running app's background jobs read these tables.)
        for table in ("devices", "elders", "caregiver_shifts"):
            conn.execute(f"DELETE FROM {table}")  # elders cascade to orders, alerts, links
        for side in "AB":
            tag = uuid.uuid4().hex[:8]
            elder = _one(
                conn,
                "INSERT INTO elders (name, community_id, home_lat, home_lon)"
                " VALUES (%s, %s, 34.867, 110.447) RETURNING id",
                (f"老人{side}", cast.communities[side]),
            )
            device = f"d{side}-{tag}"
            conn.execute("INSERT INTO devices (id, elder_id) VALUES (%s, %s)", (device, elder))
            conn.execute(
                "INSERT INTO device_credentials (device_id, secret_hash, issued_at)"
                " VALUES (%s, '$7$stub', %s)",
                (device, now),
            )
            f = Finding("sos", Severity.CRITICAL, now, "SOS", Action.RAISE, 1.0, {})
            (change,) = record_findings(conn, [(elder, f)], now)
            schedule = _one(
                conn,
                "INSERT INTO service_schedules (elder_id, kind, weekdays, local_time, starts_on)"
                " VALUES (%s, 'meal', 'mon-fri', '11:30', %s) RETURNING id",
                (elder, now.date()),
            )
            shift = _one(
                conn,
                "INSERT INTO caregiver_shifts (caregiver_id, starts_at, ends_at)"
                " VALUES (%s, %s, %s) RETURNING id",
                (cast.caregivers[side], now - timedelta(days=2), now - timedelta(days=2, hours=-1)),
            )
            w.alerts[side] = change.alert
            w.ids[side] = {
                "elder": elder,
                "device": device,
                "alert": change.alert["id"],
                "schedule": schedule,
                "shift": shift,
                "caregiver": cast.caregivers[side],
                "community": cast.communities[side],
                "staff_user": cast.users[STAFF_A if side == "A" else STAFF_B],
            }
        a = w.ids["A"]["elder"]
        for user in (FAMILY, FAMILY_REVOKED):
            conn.execute(
                "INSERT INTO family_links (user_id, elder_id, consent_recorded_at, consented_by,"
                " revoked_at) VALUES (%s, %s, %s, '本人', %s)",
                (cast.users[user], a, now, now if user == FAMILY_REVOKED else None),
            )
        conn.commit()
    for side in "AB":
        r = cast.client.post(
            "/api/v1/orders",
            json={"elder_id": w.ids[side]["elder"], "kind": "cleaning"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        order = r.json()["id"]
        r = cast.client.post(
            f"/api/v1/orders/{order}/steps",
            json={"action": "assign", "caregiver_id": cast.caregivers[side]},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        w.ids[side]["order"] = order
    return w


# --- the expectations -----------------------------------------------------------------------


def expected(rule: Rule, user: str, side: str | None) -> str:
    if rule.roles is None:
        return "public"
    if user == ANON:
        return "401"
    if user not in rule.roles:
        return "403"
    if rule.obj is not None and side is not None:
        sees = SEES_A[rule.obj] if side == "A" else SEES_B
        if user not in sees:
            return "404"
    return "ok"


def outcome(status: int) -> str:
    if status in (401, 403, 404):
        return str(status)
    if status < 300 or status == 409:  # 409: the domain refused a step, after authorisation
        return "ok"
    return f"unexpected {status}"


def path_for(path: str, w: World, side: str | None) -> str:
    if side is None:
        return path
    ids = w.ids[side]
    for name, kind in (
        ("elder_id", "elder"),
        ("alert_id", "alert"),
        ("order_id", "order"),
        ("caregiver_id", "caregiver"),
        ("device_id", "device"),
        ("schedule_id", "schedule"),
        ("shift_id", "shift"),
        ("community_id", "community"),
    ):
        path = path.replace("{" + name + "}", str(ids[kind]))
    return path


def call(cast: Cast, method: str, path: str, user: str, body: Any) -> Any:
    headers = dict(cast.headers[user])
    kw: dict[str, Any] = {"headers": headers}
    if body is not None:
        kw["json"] = body
    return cast.client.request(method, path, **kw)


def listed_ids(kind: str, body: Any) -> set[int | str]:
    if kind == "family":
        return {x["elder_id"] for x in body["data"]}
    if kind in ("elder", "device", "alert"):
        return {x["id"] for x in body["data"]}
    if kind == "latest":
        return {x["elder_id"] for x in body["elders"]}
    if kind == "stats":
        return {x["elder_id"] for x in body["by_elder"]}
    if kind == "order":
        return {x["id"] for x in body["items"]}
    if kind == "caregiver":
        return {x["id"] for x in body}
    if kind == "report":
        return {x["elder_id"] for x in body["rows"]}
    raise AssertionError(kind)


def _visible(user: str, kind: str, w: World) -> tuple[set[Any], set[Any]]:
    """The ids of ``kind`` in the world the user must see, and those they must not."""
    own, foreign = set(), set()
    for side, sees in (("A", SEES_A[kind]), ("B", SEES_B)):
        (own if user in sees else foreign).add(w.ids[side][kind])
    return own, foreign


def _foreign_in_list(rule: Rule, user: str, w: World, body: Any) -> list[str]:
    assert rule.lists is not None
    kind = LIST_KIND[rule.lists]
    got = listed_ids(rule.lists, body)
    own, foreign = _visible(user, kind, w)
    problems = []
    if got & foreign:
        problems.append(f"{user}: {rule.lists} list leaks foreign {kind} ids {got & foreign}")
    # Statistics and reports count only resolved / served ones; the family list is links.
    everyone_sees = rule.lists not in ("stats", "report", "family")
    if everyone_sees and not own <= got:
        problems.append(f"{user}: {rule.lists} list misses own {kind} ids {own - got}")
    if "count" in body and isinstance(body.get("data"), list) and body["count"] < len(got):
        problems.append(f"{user}: count {body['count']} below the listed {len(got)}")
    return problems


LIST_KIND = {
    "elder": "elder",
    "device": "device",
    "alert": "alert",
    "latest": "elder",
    "stats": "elder",
    "order": "order",
    "caregiver": "caregiver",
    "report": "elder",
    "family": "elder",
}


# --- the tests ------------------------------------------------------------------------------


def test_every_route_is_classified(cast: Cast) -> None:
    routes = app_routes(cast.client.app)
    unclassified = sorted(routes - set(RULES))
    assert not unclassified, f"classify these routes in RULES (who may call them): {unclassified}"
    gone = sorted(set(RULES) - routes)
    assert not gone, f"RULES names routes the app no longer has: {gone}"


HTTP_RULES = [
    (m, p) for (m, p), r in RULES.items() if m not in ("WS", "MOUNT") and p.startswith("/api/")
]


@pytest.mark.parametrize(("method", "path"), HTTP_RULES, ids=[f"{m} {p}" for m, p in HTTP_RULES])
def test_route_answers_by_role_and_ownership(cast: Cast, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    sides: tuple[str | None, ...] = ("A", "B") if rule.obj else (None,)
    wrong: list[str] = []
    for user in USERS:
        w = make_world(cast)
        for side in sides:
            who = user
            if rule.fresh_session and user != ANON:  # sign-out ends the session: a new one
                who = f"{user}#fresh"
                cast.headers[who] = sign_in(cast.client, cast.logins[user])
            body = rule.body(w, side or "A", user) if rule.body else None
            r = call(cast, method, path_for(path, w, side), who, body)
            got, want = outcome(r.status_code), expected(rule, user, side)
            if rule.roles is None:
                ok = not got.startswith("unexpected") or r.status_code == 422
                if not ok:
                    wrong.append(f"{user} on {side}: {r.status_code} {r.text[:120]}")
                continue
            if got != want:
                wrong.append(f"{user} on {side}: want {want}, got {r.status_code} {r.text[:160]}")
            elif rule.lists and got == "ok" and method == "GET":
                wrong += _foreign_in_list(rule, user, w, r.json())
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)


def _messages_until(ws: Any, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict]:
    """Messages until ``done`` holds and then three pings more: whatever else was queued
    for this client (a leak) has been sent by then; the pings come every 0.2 s."""
    got: list[dict[str, Any]] = []
    pings_after = 0
    deadline = time.monotonic() + 30
    while pings_after < 3:
        assert time.monotonic() < deadline, f"expected not seen; got {_received(got)}"
        msg = ws.receive_json()
        got.append(msg)
        if msg["type"] == "ping" and done(got):
            pings_after += 1
    return got


def _received(messages: list[dict[str, Any]]) -> dict[str, set[Any]]:
    seen: dict[str, set[Any]] = {"elder": set(), "alert": set(), "order": set(), "caregiver": set()}
    for m in messages:
        if m["type"] == "update":
            seen["elder"] |= {e["elder_id"] for e in m["elders"]}
        elif m["type"] in ("alert", "order", "caregiver"):
            seen[m["type"]].add(m[m["type"]]["id"])
    return seen


@pytest.mark.parametrize("user", [u for u in USERS if u != ANON])
def test_the_live_socket_sends_only_the_scope(cast: Cast, user: str) -> None:
    w = make_world(cast)
    hub = cast.client.app.state.hub  # type: ignore[attr-defined]
    with cast.client.websocket_connect("/ws/live", headers=dict(cast.headers[user])) as ws:
        for side in "BA":
            ids = w.ids[side]
            hub.publish({ids["elder"]: {"lat": 34.867, "lon": 110.447, "name": f"老人{side}"}})
            hub.publish_alert({**w.alerts[side], "count": w.alerts[side]["count"] + 1})
            order = {"id": ids["order"], "elder_id": ids["elder"], "caregiver_id": ids["caregiver"]}
            hub.services.publish("order", order, version=uuid.uuid4().hex)
            hub.publish_caregiver(
                {
                    "id": ids["caregiver"],
                    "name": "护理员",
                    "lat": 34.8 + uuid.uuid4().int % 1000 / 1e6,  # a new version each time
                    "lon": 110.4,
                    "last_pos_at": None,
                    "on_shift": True,
                    "active_orders": 1,
                }
            )
        want = {k: _visible(user, k, w)[0] for k in ("elder", "alert", "order", "caregiver")}
        messages = _messages_until(
            ws, lambda got: all(want[k] <= v for k, v in _received(got).items())
        )
    seen = _received(messages)
    for kind, ids in seen.items():
        _, foreign = _visible(user, kind, w)
        assert not ids & foreign, f"{user} was sent foreign {kind}s {ids & foreign}"
        assert want[kind] <= ids


def test_the_live_socket_refuses_anyone_not_signed_in(cast: Cast) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            cast.client.websocket_connect("/ws/live", headers=headers) as ws,
        ):
            ws.receive_json()
        assert refused.value.code == 4401


def test_a_browser_signs_in_to_the_live_socket_with_the_bearer_subprotocol(cast: Cast) -> None:
    token = cast.headers[STAFF_A]["Authorization"].removeprefix("Bearer ")
    with cast.client.websocket_connect("/ws/live", subprotocols=["bearer", token]) as ws:
        assert ws.accepted_subprotocol == "bearer"
        assert ws.receive_json()["type"] in ("ping", "update", "alert", "order", "caregiver")


def test_a_new_order_brings_its_elder_onto_the_caregivers_socket_and_sign_out_closes_it(
    cast: Cast,
) -> None:
    w = make_world(cast)
    hub = cast.client.app.state.hub  # type: ignore[attr-defined]
    hub.scope_refresh_s = 0.2
    elder = w.ids["A"]["elder"]
    session = sign_in(cast.client, cast.logins[CARER_IDLE])  # its own, to sign out below
    try:
        with cast.client.websocket_connect("/ws/live", headers=dict(session)) as ws:
            hub.publish({elder: {"lat": 34.8671, "lon": 110.4471, "name": "老人A"}})
            assert elder not in _received(_messages_until(ws, lambda got: True))["elder"]
            # Staff offer this caregiver an order for the elder: the elder comes into view,
            # with the state the hub already has (not only the next change).
            r = cast.client.post(
                "/api/v1/orders",
                json={"elder_id": elder, "kind": "meal"},
                headers=cast.headers[STAFF_A],
            )
            assert r.status_code == 201, r.text
            r = cast.client.post(
                f"/api/v1/orders/{r.json()['id']}/steps",
                json={"action": "assign", "caregiver_id": cast.caregivers["idle"]},
                headers=cast.headers[STAFF_A],
            )
            assert r.status_code == 200, r.text
            got = _messages_until(ws, lambda got: elder in _received(got)["elder"])
            update = next(
                e
                for m in got
                if m["type"] == "update"
                for e in m["elders"]
                if e["elder_id"] == elder
            )
            assert update["lat"] == 34.8671
            # Signing out ends the socket too.
            assert cast.client.post("/api/v1/auth/logout", headers=session).status_code == 204
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
            assert closed.value.code == 4401
    finally:
        hub.scope_refresh_s = 10.0
