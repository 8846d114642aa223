"""The family page on a phone: a daughter signs in on /family/ and sees her mother only.

``eldercare serve`` runs as its own process (``live_system``); the page runs in headless
Chromium at 375×667. The family, links and readings are made in the database the way
the ingest and an administrator would. The daughter must see her mother's status
(平安, then 告警 when an SOS opens), a map marker (coarse, then precise during the SOS),
today's vital signs as sparklines, recent alerts with how they ended; she requests a
service and sets her notifications through the forms, and the API agrees. A second test
lets the access token go bad: the page refreshes it by itself; a wrong password is told.

Waits are on the page's read-only hook ``window.xingbeiFamily``, the DOM or the API,
with deadlines; no fixed sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from family_helpers import PASSWORD, family, latest, raise_alert
from playwright.sync_api import Page, expect

try:
    from tests.browser import chromium_page
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from browser import chromium_page

from conftest import LiveSystem

PHONE = {"width": 375, "height": 667}
DEADLINE_MS = 20_000


def _watch_problems(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    return problems


def _sign_in(page: Page, base_url: str, login: str, password: str = PASSWORD) -> None:
    page.set_default_timeout(DEADLINE_MS)
    page.goto(f"{base_url}/family/")
    page.wait_for_function("document.body.dataset.ready === '1'")
    expect(page.locator("#fm-login")).to_be_visible()
    page.fill("#login-name", login)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")


def _loaded(page: Page, at_least: int = 1) -> None:
    page.wait_for_function(
        "n => window.xingbeiFamily.signedIn() && window.xingbeiFamily.loads() >= n",
        arg=at_least,
    )


def _seed_today(db: psycopg.Connection, elder_id: int, now: datetime) -> None:
    for seq, ago in enumerate((180, 120, 60, 10)):
        db.execute(
            "INSERT INTO vitals (ts, device_id, seq, elder_id, hr, spo2, sbp, dbp, temp)"
            " VALUES (%s, 'fam-w1', %s, %s, %s, 97, 126, 80, 36.5)",
            (now - timedelta(minutes=ago), seq, elder_id, 68 + seq * 3),
        )
    db.commit()


def test_a_daughter_sees_her_mother_on_her_phone(
    live_system: LiveSystem, db: psycopg.Connection
) -> None:
    fam = family(db, live_system.database_url)
    now = datetime.now(UTC)
    latest(
        db,
        fam.mother,
        last_seen=now,
        pos_ts=now,
        lat=34.86712,
        lon=110.44731,
        acc=9.0,
        battery=58.0,
        worn=True,
        online=True,
        hr=77.0,
        spo2=97.0,
        sbp=126.0,
        dbp=80.0,
        temp=36.5,
        vitals_ts=now,
    )
    _seed_today(db, fam.mother, now)
    # Yesterday's fall, handled: it shows in the list with its outcome.
    fall = raise_alert(db, fam.mother, "fall", "high", now - timedelta(hours=20))
    with live_system.http() as api:
        r = api.post(
            f"/api/v1/alerts/{fall['id']}/resolve", json={"by": "王值班", "outcome": "handled"}
        )
        assert r.status_code == 200, r.text
    stranger_name = db.execute("SELECT name FROM elders WHERE id = %s", (fam.stranger,)).fetchone()
    mother_name = db.execute("SELECT name FROM elders WHERE id = %s", (fam.mother,)).fetchone()

    with chromium_page(PHONE) as page:
        problems = _watch_problems(page)
        _sign_in(page, live_system.base_url, fam.daughter["login"])
        _loaded(page)
        hook = "window.xingbeiFamily"
        assert page.evaluate(f"{hook}.elders().map(e => e.elder_id)") == [fam.mother]
        assert stranger_name[0] not in page.content()
        expect(page.locator("#fm-elder-name")).to_contain_text(mother_name[0])
        expect(page.locator("#fm-status")).to_have_attribute("data-status", "safe")
        expect(page.locator("#fm-status-word")).to_have_text("平安")
        expect(page.locator("#fm-battery")).to_have_text("58%")
        # The map: one marker, coarse, and the page says so.
        expect(page.locator("#fm-map .leaflet-marker-icon")).to_have_count(1)
        expect(page.locator("#fm-map")).to_have_attribute("data-precision", "coarse")
        expect(page.locator("#fm-where")).to_contain_text("大致位置")
        # Today's vital signs, drawn inline.
        expect(page.locator("#fm-vitals .vital[data-metric=hr] svg.spark")).to_have_count(1)
        expect(page.locator("#fm-vitals .vital[data-metric=hr] .vital-value")).to_contain_text("77")
        expect(page.locator("#fm-vitals .vital[data-metric=sbp] .vital-value")).to_contain_text(
            "126/80"
        )
        # Recent alerts with how they ended.
        done = page.locator(f"#fm-alerts li[data-alert-id='{fall['id']}']")
        expect(done).to_contain_text("跌倒")
        expect(done).to_contain_text("已处理")
        # A phone-width page: nothing scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # An SOS: 告警, and the precise position with the reason.
        raise_alert(db, fam.mother, "sos", "critical", datetime.now(UTC))
        page.evaluate(f"{hook}.refresh()")
        expect(page.locator("#fm-status")).to_have_attribute("data-status", "alert")
        expect(page.locator("#fm-status-word")).to_have_text("告警")
        expect(page.locator("#fm-open-alerts")).to_contain_text("紧急呼救")
        expect(page.locator("#fm-map")).to_have_attribute("data-precision", "precise")
        expect(page.locator("#fm-map .leaflet-marker-icon")).to_have_count(1)
        expect(page.locator("#fm-where")).to_contain_text("精确位置")

        # Request a meal through the form.
        page.click("#order-kinds label.kind-meal")
        page.fill("#order-notes", "少盐")
        page.click("#order-form button[type=submit]")
        expect(page.locator("#fm-flash")).to_contain_text("助餐")
        row = db.execute(
            "SELECT source, notes FROM orders WHERE elder_id = %s AND kind = 'meal'", (fam.mother,)
        ).fetchone()
        db.commit()
        assert row == ("family", "少盐")

        # Notifications: SMS to her phone, quiet at night.
        page.fill(".channel[data-kind=sms] .address", "13800001111")
        page.fill("#quiet-start", "22:00")
        page.fill("#quiet-end", "07:00")
        page.click("#notify-form button[type=submit]")
        expect(page.locator("#fm-flash")).to_contain_text("已保存")
        prefs = db.execute(
            "SELECT channels, quiet_start::text, quiet_end::text FROM notification_preferences"
            " WHERE user_id = %s",
            (fam.daughter["id"],),
        ).fetchone()
        db.commit()
        assert prefs is not None
        assert {c["kind"]: c["address"] for c in prefs[0]} == {
            "in_app": None,
            "sms": "13800001111",
        }
        assert prefs[1:] == ("22:00:00", "07:00:00")

        # English on the same page.
        page.click("#lang-toggle")
        expect(page.locator("#fm-status-word")).to_have_text("Alert")
        assert problems == []


def test_the_page_refreshes_a_bad_token_and_tells_a_wrong_password(
    live_system: LiveSystem, db: psycopg.Connection
) -> None:
    fam = family(db, live_system.database_url)
    with chromium_page(PHONE) as page:
        problems = _watch_problems(page)
        _sign_in(page, live_system.base_url, fam.daughter["login"], "not-the-password")
        expect(page.locator("#login-problem")).to_have_text("账号或密码不正确。")
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        _loaded(page)
        # The access token goes bad (as after 15 minutes); the refresh token carries on.
        page.evaluate(
            """() => {
              const k = 'xingbei.family.tokens';
              const t = JSON.parse(sessionStorage.getItem(k));
              sessionStorage.setItem(k, JSON.stringify({ ...t, access: 'expired.token.x' }));
            }"""
        )
        before = page.evaluate("window.xingbeiFamily.loads()")
        page.evaluate("window.xingbeiFamily.refresh()")
        _loaded(page, before + 1)
        assert page.evaluate("window.xingbeiFamily.signedIn()") is True
        stored = page.evaluate("JSON.parse(sessionStorage.getItem('xingbei.family.tokens')).access")
        assert stored != "expired.token.x"
        # A reload of the tab keeps the session; signing out ends it.
        page.reload()
        _loaded(page)
        page.click("#fm-signout")
        expect(page.locator("#fm-login")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('xingbei.family.tokens')") is None
        assert problems == []
