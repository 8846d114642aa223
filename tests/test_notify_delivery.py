"""Notifications delivered for real: apprise posting to an HTTP receiver this test runs.

The receiver is a ``http.server`` on a free local port; channels are apprise
``json://127.0.0.1:PORT/<name>`` URLs, and a path ending in ``fail`` answers 500.  The
API runs in process with the notifier on a 0.2 s tick and the test's clock, so the
ladder's minutes pass when the test says so.  Nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.core import Finding, Severity
from api.app import create_app
from api.notifier import Notifier
from auth.passwords import hash_password
from conftest import free_port, test_settings, wait_until
from ingest.detection_notify import announce
from notify.apprise_sender import send
from orders.lifecycle import Actor
from storage.alerts import record_findings
from storage.orders import create_order_sync

SECRET = "test-signing-key-" + "n" * 32
PASSWORD = "correct-horse-9"


class Receiver:
    """Records every POST body by path; ``…/fail`` answers 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.posts.append((self.path, json.loads(body or b"{}")))
                self.send_response(500 if self.path.endswith("fail") else 200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"json://127.0.0.1:{self.port}/{name}"

    def to(self, path: str, kind: str = "(sos)") -> list[dict]:
        with self.lock:
            return [b for p, b in self.posts if p == f"/{path}" and kind in b.get("title", "")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    client: TestClient
    db: psycopg.Connection
    clock: Clock
    receiver: Receiver
    community: int
    elder: int

    def user(
        self, login: str, role: str, channels: list[str] | list[dict], on: str | None = None
    ) -> int:
        row = self.db.execute(
            "INSERT INTO users (login, display_name, role, community_id, password_hash)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (login, f"用户 {login}", role, self.community, hash_password(PASSWORD)),
        ).fetchone()
        assert row is not None
        prefs = [
            c if isinstance(c, dict) else {"kind": "webhook", "url": c, "enabled": True}
            for c in channels
        ]
        self.db.execute(
            "INSERT INTO notification_preferences (user_id, channels) VALUES (%s, %s)",
            (row[0], json.dumps(prefs)),
        )
        if on is not None:
            self.db.execute(
                "INSERT INTO duty_roster (community_id, user_id, role_in_ladder, starts_at)"
                " VALUES (%s, %s, %s, %s)",
                (self.community, row[0], on, self.clock.now - timedelta(hours=1)),
            )
        self.db.commit()
        return int(row[0])

    def sign_in(self, login: str) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/login", data={"username": login, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def sos(self, *, announced: bool = False) -> int:
        finding = Finding("sos", Severity.CRITICAL, self.clock.now, "SOS 按键求助")
        changes = record_findings(self.db, [(self.elder, finding)], self.clock.now)
        if announced:  # as the detection process does: NOTIFY in the alert's transaction
            announce(self.db, [c.alert for c in changes])
        self.db.commit()
        return int(changes[0].alert["id"])

    def passes(self, n: int = 3) -> None:
        """Let the notifier run ``n`` more full passes (progress, not a sleep)."""
        notifier = self.client.app.state.notifier  # type: ignore[attr-defined]
        target = notifier.passes + n
        wait_until(lambda: notifier.passes >= target, timeout=30)


@pytest.fixture
def world(
    database_url: str, db: psycopg.Connection, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[World]:
    # Settings a test may change ({port} is the receiver's), e.g. a slower timer.
    overrides = {"notify_tick_s": 0.2, **getattr(request, "param", {})}
    db.execute("TRUNCATE users, orders, caregivers, notification_inbox RESTART IDENTITY CASCADE")
    row = db.execute("INSERT INTO communities (name) VALUES ('杏北社区') RETURNING id").fetchone()
    assert row is not None
    elder = db.execute(
        "INSERT INTO elders (name, community_id, home_lat, home_lon)"
        " VALUES ('王秀英', %s, 34.867, 110.447) RETURNING id",
        (row[0],),
    ).fetchone()
    assert elder is not None
    db.commit()
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    receiver = Receiver()
    for k, v in overrides.items():
        overrides[k] = v.format(port=receiver.port) if isinstance(v, str) else v
    settings = test_settings(home=tmp_path, secret_key=SECRET, **overrides)
    app = create_app(settings, database_url)
    app.state.clock = clock
    try:
        with TestClient(app) as client:
            yield World(client, db, clock, receiver, int(row[0]), int(elder[0]))
    finally:
        receiver.close()


def test_an_sos_reaches_the_on_duty_staff_webhook_naming_the_elder_and_kind(world: World) -> None:
    world.user("li", "staff", [world.receiver.url("duty")], on="duty")
    alert_id = world.sos()
    posts = wait_until(lambda: world.receiver.to("duty"), timeout=20)
    title, message = posts[0]["title"], posts[0]["message"]  # type: ignore[index]
    assert "王秀英" in title and "sos" in title and "SOS 求助" in title
    assert f"Alert #{alert_id} sos" in message
    # the SOS's 助急 order finds no caregiver: the duty hear that too
    stuck = wait_until(lambda: world.receiver.to("duty", kind="无人可派"), timeout=30)
    assert "王秀英" in stuck[0]["title"]  # type: ignore[index]
    # the in-app inbox holds it too, and can be marked read
    me = world.sign_in("li")
    inbox = world.client.get("/api/v1/me/notifications", headers=me).json()
    assert inbox["unread"] >= 1
    sos_note = next(n for n in inbox["items"] if n["alert_id"] == alert_id)
    assert "王秀英" in sos_note["title"]
    r = world.client.post(
        "/api/v1/me/notifications/read", json={"ids": [sos_note["id"]]}, headers=me
    )
    assert r.json() == {"marked": 1}
    unread = world.client.get("/api/v1/me/notifications?unread=true", headers=me).json()
    assert all(n["id"] != sos_note["id"] for n in unread["items"])


def test_a_failing_channel_falls_through_and_the_failure_is_on_the_alert(world: World) -> None:
    world.user("li", "staff", [world.receiver.url("fail"), world.receiver.url("duty")], on="duty")
    alert_id = world.sos()
    wait_until(lambda: world.receiver.to("duty"), timeout=20)
    assert world.receiver.to("fail")  # it was tried first, and answered 500
    me = world.sign_in("li")
    r = world.client.get(f"/api/v1/alerts/{alert_id}/notifications", headers=me)
    assert r.status_code == 200, r.text
    tries = [(t["step"], t["attempt_no"], t["status"]) for t in r.json()]
    assert tries[:2] == [("duty", 1, "failed"), ("duty", 2, "delivered")]
    failed = r.json()[0]
    assert "500" in failed["error"] and failed["recipient_name"] == "用户 li"
    assert failed["target"].startswith("json://127.0.0.1:")
    # unsigned, the attempts are not shown
    assert world.client.get(f"/api/v1/alerts/{alert_id}/notifications").status_code == 401


def test_a_closed_port_falls_through_to_the_next_step(world: World) -> None:
    closed = f"json://127.0.0.1:{free_port()}/nobody"  # nothing listens there
    world.user("li", "staff", [closed], on="duty")
    world.user("zhang", "staff", [world.receiver.url("boss")], on="supervisor")
    alert_id = world.sos()
    # the duty's only channel failed: the supervisor hears now, not 2 minutes later
    posts = wait_until(lambda: world.receiver.to("boss"), timeout=30)
    assert "升级至主管" in posts[0]["title"]  # type: ignore[index]
    rows = world.client.get(
        f"/api/v1/alerts/{alert_id}/notifications", headers=world.sign_in("zhang")
    ).json()
    first = rows[0]
    assert (first["step"], first["status"]) == ("duty", "failed")
    assert "Connection error" in first["error"]


def test_escalation_after_the_wait_and_acknowledging_stops_reminders(world: World) -> None:
    world.user("li", "staff", [world.receiver.url("duty")], on="duty")
    world.user("zhang", "staff", [world.receiver.url("boss")], on="supervisor")
    me = world.sign_in("li")
    ladder = {
        "steps": [
            {"audience": "duty", "wait_s": 120, "min_severity": "medium"},
            {"audience": "supervisor", "wait_s": 600, "min_severity": "high"},
        ],
        "reminder_s": 60,
        "max_reminders": 5,
        "emergency": {"label": "120", "phone": "120"},
    }
    r = world.client.put(f"/api/v1/communities/{world.community}/ladder", json=ladder, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["default"] is False and r.json()["emergency"]["phone"] == "120"

    alert_id = world.sos()
    wait_until(lambda: world.receiver.to("duty"), timeout=20)
    world.passes()
    assert world.receiver.to("boss") == []  # not before the wait

    world.clock.advance(seconds=61)  # a reminder, not a stream
    wait_until(lambda: len(world.receiver.to("duty")) == 2, timeout=20)
    assert "第1次提醒" in world.receiver.to("duty")[1]["title"]
    world.passes()
    assert len(world.receiver.to("duty")) == 2

    world.clock.advance(seconds=60)  # 121 s: the supervisor
    posts = wait_until(lambda: world.receiver.to("boss"), timeout=20)
    assert "升级至主管" in posts[0]["title"]  # type: ignore[index]

    r = world.client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "李值班"}, headers=me
    )
    assert r.status_code == 200, r.text
    sent = (len(world.receiver.to("duty")), len(world.receiver.to("boss")))
    world.clock.advance(minutes=30)
    world.passes()
    assert (len(world.receiver.to("duty")), len(world.receiver.to("boss"))) == sent

    me = world.sign_in("li")  # 30 minutes on: the first access token has expired
    steps = [
        (t["step"], t["round"], t["status"])
        for t in world.client.get(f"/api/v1/alerts/{alert_id}/notifications", headers=me).json()
    ]
    assert steps == [
        ("duty", 0, "delivered"),
        ("duty", 1, "delivered"),
        ("supervisor", 0, "delivered"),
    ]


def test_a_second_node_does_not_send_while_the_first_holds_the_lock(
    world: World, database_url: str
) -> None:
    world.user("li", "staff", [world.receiver.url("duty")], on="duty")
    world.passes(1)  # the app's notifier has taken the lead

    async def second_node_pass() -> int:
        other = Notifier(database_url, clock=world.clock)
        try:
            world.sos()
            return len(await other.tick()) + other.passes
        finally:
            await other._drop_connection()

    assert asyncio.run(second_node_pass()) == 0
    wait_until(lambda: world.receiver.to("duty"), timeout=20)  # the leader sent it
    world.passes()
    assert len(world.receiver.to("duty")) == 1


def test_channels_and_ladder_validate_and_are_scoped(world: World) -> None:
    world.user("li", "staff", [], on="duty")
    me = world.sign_in("li")
    bad = {"channels": [{"kind": "webhook", "url": "nonsense://x"}]}
    r = world.client.put("/api/v1/me/channels", json=bad, headers=me)
    assert r.status_code == 422 and "apprise" in r.text
    good = {
        "channels": [{"kind": "dingtalk", "url": "dingtalk://abcdef0123456789"}],
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    assert world.client.put("/api/v1/me/channels", json=good, headers=me).status_code == 200
    got = world.client.get("/api/v1/me/channels", headers=me).json()
    assert got["channels"][0]["kind"] == "dingtalk" and got["quiet_start"] == "22:00:00"
    other = world.db.execute("INSERT INTO communities (name) VALUES ('别处') RETURNING id")
    other_id = other.fetchone()[0]  # type: ignore[index]
    world.db.commit()
    # Another community's ladder looks absent, as anything out of scope does.
    assert world.client.get(f"/api/v1/communities/{other_id}/ladder", headers=me).status_code == 404
    default = world.client.get(f"/api/v1/communities/{world.community}/ladder", headers=me).json()
    assert default["default"] is True and default["steps"][0]["audience"] == "duty"
    twice = {"steps": [{"audience": "duty", "wait_s": 60}, {"audience": "duty", "wait_s": 60}]}
    r = world.client.put(f"/api/v1/communities/{world.community}/ladder", json=twice, headers=me)
    assert r.status_code == 422


@pytest.mark.parametrize("world", [{"notify_tick_s": 300.0}], indirect=True)
def test_an_announced_alert_wakes_the_notifier_without_waiting_for_its_timer(
    world: World,
) -> None:
    world.user("li", "staff", [world.receiver.url("duty")], on="duty")
    notifier = world.client.app.state.notifier  # type: ignore[attr-defined]
    wait_until(lambda: notifier.passes >= 1)  # started; the next pass by timer is 5 min away
    world.sos(announced=True)
    wait_until(lambda: world.receiver.to("duty"), timeout=20)


def test_a_channel_that_never_answers_counts_as_failed_after_the_timeout() -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"json://127.0.0.1:{port}/hook?rto=30&cto=30"
        result = asyncio.run(send(url, "t", "b", timeout_s=1.0))
    assert not result.ok and result.error == "no answer within 1 s"


def test_a_caregiver_hears_of_an_order_offered_to_them(world: World) -> None:
    row = world.db.execute(
        "INSERT INTO caregivers (community_id, name, skills, last_lat, last_lon, last_pos_at)"
        " VALUES (%s, '赵护理员', '{meal_delivery}', 34.867, 110.447, now()) RETURNING id",
        (world.community,),
    ).fetchone()
    assert row is not None
    world.db.execute(
        "INSERT INTO caregiver_shifts (caregiver_id, starts_at, ends_at)"
        " VALUES (%s, now() - interval '1 hour', now() + interval '4 hours')",
        (row[0],),
    )
    user = world.user("zhao", "caregiver", [world.receiver.url("carer")])
    world.db.execute("UPDATE users SET caregiver_id = %s WHERE id = %s", (row[0], user))
    world.db.commit()
    order_id, _ = create_order_sync(
        world.db, elder_id=world.elder, kind="meal", actor=Actor("staff", user), at=world.clock.now
    )
    world.db.commit()
    posts = wait_until(lambda: world.receiver.to("carer", kind="新派单"), timeout=30)
    assert "助餐" in posts[0]["title"] and "王秀英" in posts[0]["title"]  # type: ignore[index]
    assert f"Order #{order_id} (meal)" in posts[0]["message"]  # type: ignore[index]


def test_the_duty_roster_takes_staff_of_the_community_only(world: World) -> None:
    boss = world.user("zhang", "staff", [])
    carer = world.user("zhao", "caregiver", [])
    me = world.sign_in("zhang")
    base = f"/api/v1/communities/{world.community}/duty"
    start = (world.clock.now - timedelta(minutes=5)).isoformat()
    r = world.client.post(base, json={"user_id": carer, "starts_at": start}, headers=me)
    assert r.status_code == 422 and "caregiver" in r.text
    r = world.client.post(
        base, json={"user_id": boss, "role_in_ladder": "supervisor", "starts_at": start}, headers=me
    )
    assert r.status_code == 201, r.text
    naive = {"user_id": boss, "starts_at": "2026-12-04T08:00:00"}  # no zone: ambiguous
    assert world.client.post(base, json=naive, headers=me).status_code == 422
    listed = world.client.get(base, headers=me).json()
    assert [(x["user_id"], x["role_in_ladder"]) for x in listed] == [(boss, "supervisor")]
    carer_token = world.sign_in("zhao")
    assert world.client.get(base, headers=carer_token).status_code == 403


@pytest.mark.parametrize(
    "world", [{"notify_sms_via": "json://127.0.0.1:{port}/sms/{{to}}"}], indirect=True
)
def test_family_channels_as_the_family_page_saves_them_are_reached(world: World) -> None:
    """``{"kind", "address"}``: a phone number through the SMS gateway, an http webhook."""
    son = world.user(
        "son",
        "family",
        [
            {"kind": "in_app", "address": None},
            {"kind": "sms", "address": "+86 138-0000-0000"},
            {"kind": "webhook", "address": f"http://127.0.0.1:{world.receiver.port}/fam"},
        ],
    )
    world.db.execute(
        "INSERT INTO family_links (user_id, elder_id, consent_recorded_at, consented_by)"
        " VALUES (%s, %s, now(), '王秀英本人')",
        (son, world.elder),
    )
    world.db.execute(
        "INSERT INTO escalation_ladders (community_id, steps) VALUES (%s, %s)",
        (
            world.community,
            json.dumps(
                [{"audience": "family", "wait_s": 600, "min_severity": "high", "remind": False}]
            ),
        ),
    )
    world.db.commit()
    world.sos()
    posts = wait_until(lambda: world.receiver.to("sms/+8613800000000"), timeout=20)
    assert "王秀英" in posts[0]["title"]  # type: ignore[index]
    world.passes()
    assert world.receiver.to("fam") == []  # the first channel delivered: no need for more
