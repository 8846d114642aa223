"""Hostile text is inert: SQL and HTML injection strings in every free-text field are
stored verbatim, come back verbatim in JSON, and the dashboard shows them as text."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import uvicorn
from browser import chromium_page
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from conftest import (
    ADMIN_LOGIN,
    TEST_PASSWORD,
    as_admin,
    free_port,
    signed_in_as,
    test_settings,
)
from ingest.batch import Inbound, assemble
from protocol.decode import Limits
from storage.writer import write_batch

SECRET = "injection-signing-key-" + "x" * 32
XSS_NAME = '<img src=x onerror="window.__xssName=(window.__xssName||0)+1">'
HOSTILE = [
    "'; DROP TABLE elders; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    '" OR 1=1 --',
    "%s %(x)s {0} $1",
    XSS_NAME,
    "<script>window.__xssName=1</script>",
    "</textarea><svg onload=alert(1)>",
    "javascript:alert(1)",
    "\\'; SELECT pg_sleep(5); --",
    "老人 ' || (SELECT current_user) || '",
]


@pytest.fixture
def client(database_url: str, db: psycopg.Connection, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(test_settings(home=tmp_path, secret_key=SECRET), database_url)
    with TestClient(app) as c:
        as_admin(c, database_url)
        yield c


def _open_alert(db: psycopg.Connection, elder_id: int) -> int:
    now = datetime.now(UTC)
    row = db.execute(
        "INSERT INTO alerts (elder_id, kind, severity, message, incident_id, first_ts, last_ts,"
        " opened_at, updated_at) VALUES (%s, 'sos', 'critical', 'SOS', 0, %s, %s, %s, %s)"
        " RETURNING id",
        (elder_id, now - timedelta(seconds=5), now, now, now),
    ).fetchone()
    db.commit()
    return int(row[0])


@pytest.mark.parametrize("text", HOSTILE)
def test_elder_order_and_alert_texts_are_stored_and_returned_verbatim(
    client: TestClient, db: psycopg.Connection, text: str
) -> None:
    r = client.post(
        "/api/v1/elders", json={"name": text, "address": text, "notes": text, "phone": text[:40]}
    )
    assert r.status_code == 201, r.text
    elder = r.json()
    assert (elder["name"], elder["address"], elder["notes"]) == (text, text, text)
    got = client.get(f"/api/v1/elders/{elder['id']}").json()
    assert (got["name"], got["address"], got["notes"], got["phone"]) == (
        text,
        text,
        text,
        text[:40],
    )
    stored = db.execute(
        "SELECT name, address, notes FROM elders WHERE id = %s", (elder["id"],)
    ).fetchone()
    assert stored == (text, text, text)

    r = client.post("/api/v1/orders", json={"elder_id": elder["id"], "kind": "meal", "notes": text})
    assert r.status_code == 201, r.text
    order = client.get(f"/api/v1/orders/{r.json()['id']}").json()
    assert order["notes"] == text

    alert_id = _open_alert(db, elder["id"])
    by = text[:50].strip() or "x"
    r = client.post(
        f"/api/v1/alerts/{alert_id}/resolve",
        json={"by": by, "outcome": "false_alarm", "note": text},
    )
    assert r.status_code == 200, r.text
    alert = client.get(f"/api/v1/alerts/{alert_id}").json()
    assert (alert["note"], alert["resolved_by"], alert["elder_name"]) == (text, by, text)

    # Every table is still there and holds what it held.
    assert db.execute("SELECT count(*) FROM elders").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1


def test_quarantine_echoes_hostile_topics_and_payloads_verbatim(
    client: TestClient, database_url: str, db: psycopg.Connection
) -> None:
    now = datetime.now(UTC)
    messages = [
        Inbound(f"eldercare/v1/devices/{t}/vitals", t.encode(), now, mid=i)
        for i, t in enumerate(HOSTILE)
    ]
    assembled = assemble(messages, lambda _: (False, None), Limits(), raw_limit=4096)
    with psycopg.connect(database_url) as conn:
        write_batch(conn, assembled.batch)
    page = client.get("/api/v1/quarantine", params={"limit": 100}).json()
    by_topic = {q["topic"]: q for q in page["data"]}
    for t in HOSTILE:
        item = by_topic[f"eldercare/v1/devices/{t}/vitals"]
        assert item["raw_preview"] == t
        assert item["reason"] in ("bad_topic", "unknown_device")


# --- the dashboard ---------------------------------------------------------------


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` on a real port in this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="injection-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def open_dashboard(page, base_url: str) -> None:
    """Sign in on the login page as the test administrator; wait for the first paint."""
    page.goto(f"{base_url}/login/?next=/")
    page.fill("#login-name", ADMIN_LOGIN)
    page.fill("#login-password", TEST_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{base_url}/")
    page.wait_for_function("document.body.dataset.ready === '1'")


def test_a_hostile_elder_name_is_shown_as_text_on_the_dashboard(
    database_url: str, db: psycopg.Connection, tmp_path: Path
) -> None:
    settings = test_settings(home=tmp_path, secret_key=SECRET)
    with TestClient(create_app(settings, database_url)) as c:  # same key: its token works
        headers = signed_in_as(c, database_url)
    with served(create_app(settings, database_url)) as base:
        import httpx

        api = httpx.Client(base_url=base, headers=headers, timeout=10)
        config = api.get("/api/v1/config").json()
        lat, lon = config["center"]
        r = api.post("/api/v1/elders", json={"name": XSS_NAME, "home_lat": lat, "home_lon": lon})
        assert r.status_code == 201, r.text
        elder_id = r.json()["id"]
        assert api.post("/api/v1/devices", json={"id": "xss-w1", "elder_id": elder_id}).is_success
        now = datetime.now(UTC)
        db.execute(
            "INSERT INTO latest_state (elder_id, device_id, last_seen, pos_ts, lat, lon, acc, src)"
            " VALUES (%s, 'xss-w1', %s, %s, %s, %s, 8, 'gps')",
            (elder_id, now, now, lat, lon),
        )
        db.commit()
        _open_alert(db, elder_id)  # so it is in the alert list and the attention list too
        r = api.post("/api/v1/caregivers", json={"name": XSS_NAME, "skills": ["meal_delivery"]})
        assert r.status_code == 201, r.text
        caregiver_id = r.json()["id"]
        fix = {"lat": lat + 0.002, "lon": lon + 0.002, "acc": 10}
        assert api.post(f"/api/v1/caregivers/{caregiver_id}/position", json=fix).is_success

        with chromium_page() as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(20_000)
            open_dashboard(page, base)
            page.wait_for_function(
                "(id) => window.xingbei.markers().some((m) => m.elder_id === id)", arg=elder_id
            )
            # The name in the alert list, the attention list and (hovered) the dot's tip.
            page.locator("#alert-list").get_by_text(XSS_NAME).first.wait_for()
            attention = page.locator(f'#attention-list [data-elder-id="{elder_id}"]')
            attention.wait_for()
            point = page.evaluate("(id) => window.xingbei.screenPoint(id)", elder_id)
            page.mouse.move(point["x"], point["y"])
            page.locator(".dot-tip").get_by_text(XSS_NAME).wait_for()
            # A caregiver of the same name on the map, hovered: its tip shows it as text.
            page.locator(f'[data-caregiver-id="{caregiver_id}"]').hover()
            page.locator(".dot-tip", has_text=XSS_NAME).last.wait_for()
            # Selected: the card shows the name, as text.
            attention.click()
            page.wait_for_function("(id) => window.xingbei.selected() === id", arg=elder_id)
            assert page.locator("#card-name").text_content() == XSS_NAME

            # Control: the same markup, inserted as HTML, does run in this browser...
            page.evaluate(
                "() => { const d = document.createElement('div');"
                " d.innerHTML = '<img src=x onerror=\"window.__xssControl=1\">';"
                " document.body.appendChild(d); }"
            )
            page.wait_for_function("window.__xssControl === 1")
            # ... and by now the dashboard's copies of the name would have run too.
            assert page.evaluate("window.__xssName") is None
            assert page.locator("img[src='x']").count() == 1  # only the control's
            assert not errors, errors
