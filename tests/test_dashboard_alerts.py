"""End to end: an SOS becomes a live alert on the big screen, and staff handle it there.

Against the whole system (``live_system``: ``eldercare serve`` as its own process on a
real broker and PostgreSQL) and the dashboard in headless Chromium. An elder with a
device is enrolled through the API; the device presses SOS over MQTT. The alert must
be pushed to the open page within seconds (no reload): listed with the elder's name,
the elder's dot red, the alarm sound due (and, after one click on "启用声音", playing).
Staff then acknowledge it from the page (the operator's name asked once) and resolve
it as a false alarm; the API must agree at each step, the alert must leave the active
list and the dot its red, and the false-alarm statistics must count it for ``sos``.

Everything waits on the page's read-only hook ``window.xingbei`` or on the DOM, with a
deadline; there are no fixed sleeps.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

try:
    from tests.browser import chromium_page
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from browser import chromium_page

# MQTT → ingest → detection → PostgreSQL → push → page: "within a few seconds".
ALERT_DEADLINE_MS = 10_000
# Page loads, clicks and their round trips.
DEADLINE_MS = 20_000
OPERATOR = "值班测试员"


def _enrol(live_system: Any) -> tuple[int, str, str, tuple[float, float]]:
    with live_system.http() as api:
        config = api.get("/api/v1/config").json()
        lat, lon = config.get("center") or (34.867, 110.447)
        lat, lon = lat + 0.0004, lon - 0.0006
        name = f"警报测试{uuid.uuid4().hex[:4]}"
        r = api.post("/api/v1/elders", json={"name": name, "home_lat": lat, "home_lon": lon})
        assert r.status_code == 201, r.text
        elder_id = r.json()["id"]
        device = f"alert-e2e-{uuid.uuid4().hex[:8]}"
        r = api.post("/api/v1/devices", json={"id": device, "elder_id": elder_id})
        assert r.status_code == 201, r.text
    return elder_id, name, device, (lat, lon)


def _publish(live_system: Any, device: str, kind: str, **fields: Any) -> None:
    body = {"ts": int(time.time() * 1000), "seq": 1, **fields}
    live_system.publish(f"eldercare/v1/devices/{device}/{kind}", json.dumps(body).encode())


def _sos_false_alarms(live_system: Any) -> int:
    with live_system.http() as api:
        r = api.get("/api/v1/alerts/stats")
    assert r.status_code == 200, r.text
    return int(r.json()["by_kind"].get("sos", {}).get("false_alarms", 0))


def _api_alert(live_system: Any, alert_id: int) -> dict[str, Any]:
    with live_system.http() as api:
        r = api.get(f"/api/v1/alerts/{alert_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _marker(page: Page, elder_id: int) -> dict[str, Any] | None:
    return page.evaluate(
        "(id) => window.xingbei.markers().find((m) => m.elder_id === id) || null", elder_id
    )


def test_sos_alert_is_pushed_acknowledged_and_resolved_on_the_dashboard(
    live_system: Any, tmp_path: Path
) -> None:
    elder_id, name, device, (lat, lon) = _enrol(live_system)
    _publish(live_system, device, "location", lat=lat, lon=lon, acc=8, src="gps")
    false_alarms_before = _sos_false_alarms(live_system)

    with chromium_page() as page:
        problems: list[str] = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.set_default_timeout(DEADLINE_MS)
        live_system.open_signed_in(page, "/")
        page.wait_for_function("document.body.dataset.ready === '1'")
        page.wait_for_function("window.xingbei.connected()")
        page.wait_for_function(
            "(id) => window.xingbei.markers().some((m) => m.elder_id === id)", arg=elder_id
        )
        assert not _marker(page, elder_id)["red"]
        # Nothing has been clicked yet: the browser holds audio back.
        assert not page.evaluate("window.xingbei.soundState().enabled")

        # The device presses SOS; the open page gets the alert pushed.
        _publish(live_system, device, "event", type="sos")
        page.wait_for_function(
            "(id) => window.xingbei.alerts().some((a) => a.elder_id === id && a.kind === 'sos')",
            arg=elder_id,
            timeout=ALERT_DEADLINE_MS,
        )
        alert = next(
            a for a in page.evaluate("window.xingbei.alerts()") if a["elder_id"] == elder_id
        )
        assert (alert["severity"], alert["state"]) == ("critical", "open")
        item = page.locator(f'#alert-list [data-alert-id="{alert["id"]}"]')
        expect(item).to_contain_text(name)
        expect(item).to_contain_text("紧急呼救")
        expect(item).to_contain_text("危急")
        page.wait_for_function(
            "(id) => window.xingbei.markers().some((m) => m.elder_id === id && m.red)", arg=elder_id
        )

        # The alarm is due but blocked until a click; one click on "启用声音" lets it ring.
        sound = page.evaluate("window.xingbei.soundState()")
        assert sound["due"] and sound["blocked"] and not sound["muted"], sound
        enable = page.locator("#sound-enable")
        expect(enable).to_be_visible()
        expect(enable).to_have_class(re.compile(r"\burgent\b"))
        page.screenshot(path=str(tmp_path / "alert-open.png"))
        enable.click()
        page.wait_for_function("window.xingbei.soundState().enabled")
        page.wait_for_function("window.xingbei.soundState().beeps >= 1")
        expect(page.locator("#sound-mute")).to_be_visible()

        # Acknowledge from the page: the operator's name is asked for, once.
        item.locator('button[data-action="ack"]').click()
        expect(page.locator("#name-dialog")).to_be_visible()
        page.fill("#name-input", OPERATOR)
        page.click('#name-dialog button[value="ok"]')
        page.wait_for_function(
            "(id) => window.xingbei.alerts().some((a) => a.id === id && a.state === 'acknowledged')",
            arg=alert["id"],
        )
        expect(item).to_contain_text(OPERATOR)
        expect(page.locator("#operator-button")).to_have_text(OPERATOR)
        api_alert = _api_alert(live_system, alert["id"])
        assert api_alert["state"] == "acknowledged"
        assert api_alert["acknowledged_by"] == OPERATOR
        # Acknowledged: the alarm stops, the dot stays red until it is resolved.
        page.wait_for_function("!window.xingbei.soundState().due")
        assert _marker(page, elder_id)["red"]

        # Its details: the elder selected, the history with the acknowledgement, and
        # the readings around it, the SOS among them.
        item.locator(".a-name").click()
        page.wait_for_function("(id) => window.xingbei.selected() === id", arg=elder_id)
        drawer = page.locator("#alert-detail")
        expect(drawer).to_be_visible()
        expect(drawer.locator("#detail-title")).to_contain_text(name)
        expect(drawer.locator('#detail-history [data-action="acknowledged"]')).to_contain_text(
            OPERATOR
        )
        expect(drawer.locator(".readings-table tr.r-event")).to_contain_text("SOS")
        page.screenshot(path=str(tmp_path / "alert-details.png"))

        # Resolve as a false alarm: outcome and note asked, the name not again.
        item.locator('button[data-action="resolve"]').click()
        expect(page.locator("#resolve-dialog")).to_be_visible()
        expect(page.locator("#name-dialog")).not_to_be_visible()
        expect(page.locator("#resolve-by")).to_contain_text(OPERATOR)
        page.check('#resolve-dialog input[value="false_alarm"]')
        page.fill("#resolve-dialog textarea", "老人误按")
        page.click('#resolve-dialog button[value="ok"]')
        page.wait_for_function(
            "(id) => !window.xingbei.alerts().some((a) => a.id === id)", arg=alert["id"]
        )
        expect(item).to_have_count(0)
        api_alert = _api_alert(live_system, alert["id"])
        assert api_alert["state"] == "resolved"
        assert (api_alert["outcome"], api_alert["resolved_by"]) == ("false_alarm", OPERATOR)
        assert api_alert["note"] == "老人误按"
        # Handled: the SOS no longer makes the dot red.
        page.wait_for_function(
            "(id) => window.xingbei.markers().some((m) => m.elder_id === id && !m.red)",
            arg=elder_id,
        )

        # Counted as a false alarm for the SOS rule, by the API and on the page.
        assert _sos_false_alarms(live_system) == false_alarms_before + 1
        page.click('#alert-tabs [data-tab="recent"]')
        expect(page.locator(f'#recent-list [data-alert-id="{alert["id"]}"]')).to_contain_text(
            "误报"
        )
        page.click('#alert-tabs [data-tab="stats"]')
        expect(page.locator('#stats-view .stats-kinds tr[data-key="sos"]')).to_contain_text(
            "紧急呼救"
        )
        page.screenshot(path=str(tmp_path / "alert-stats.png"))

        assert not problems, problems
