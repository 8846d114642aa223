"""End to end: devices publish over MQTT, the live map in headless Chromium shows it.

Runs against the whole system (``live_system``: API + ingest on a real broker and a
real PostgreSQL). Three elders get devices; their positions must appear as dots, move
when the devices move, and one dot must turn red on an SOS and a heart rate of 150,
with the details card showing that heart rate after a click on the dot.

Everything waits on the page's read-only hook ``window.xingbei`` with a deadline;
there are no fixed sleeps.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

try:
    from tests.browser import chromium_page
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from browser import chromium_page

# Generous: the path is MQTT → ingest → PostgreSQL → live hub → WebSocket → frame.
DEADLINE_MS = 20_000
# Positions are compared in degrees; 1e-6° is about 0.1 m, the moves below ~40 m.
SAME_PLACE_DEG = 1e-6
# Where the test elders stand, relative to the configured map centre (deg), and
# how far they move: far enough apart that their dots cannot overlap at zoom 16.
OFFSETS = [(0.0006, -0.0008), (-0.0005, 0.0007), (0.0002, 0.0012)]
MOVE = (0.0003, 0.0004)


@dataclass
class TestElder:
    __test__ = False  # a record, not a test class

    id: int
    name: str
    device: str
    lat: float
    lon: float
    seq: int = 0


def _payload(elder: TestElder, **fields: Any) -> bytes:
    elder.seq += 1
    return json.dumps({"ts": int(time.time() * 1000), "seq": elder.seq, **fields}).encode()


def _publish_location(live_system: Any, elder: TestElder) -> None:
    topic = f"eldercare/v1/devices/{elder.device}/location"
    body = _payload(elder, lat=elder.lat, lon=elder.lon, acc=8, src="gps")
    live_system.publish(topic, body)


def _wait_for_positions(page: Page, elders: list[TestElder]) -> None:
    """Wait until every test elder has a dot at its current position."""
    expected = [{"id": e.id, "lat": e.lat, "lon": e.lon} for e in elders]
    page.wait_for_function(
        """([expected, tol]) => {
            const byId = new Map(window.xingbei.markers().map((m) => [m.elder_id, m]));
            return expected.every((x) => {
                const m = byId.get(x.id);
                return m && Math.abs(m.lat - x.lat) < tol && Math.abs(m.lon - x.lon) < tol;
            });
        }""",
        arg=[expected, SAME_PLACE_DEG],
        timeout=DEADLINE_MS,
    )


def _screen_point(page: Page, elder_id: int) -> dict[str, Any]:
    point = page.evaluate("(id) => window.xingbei.screenPoint(id)", elder_id)
    assert point is not None, f"no dot for elder {elder_id}"
    return point


def _enrol(live_system: Any, center: tuple[float, float]) -> list[TestElder]:
    run = uuid.uuid4().hex[:8]
    elders = []
    with live_system.http() as api:
        for i, (dlat, dlon) in enumerate(OFFSETS):
            name = f"测试老人{i + 1}"
            lat, lon = center[0] + dlat, center[1] + dlon
            r = api.post("/api/v1/elders", json={"name": name, "home_lat": lat, "home_lon": lon})
            assert r.status_code == 201, r.text
            elder_id = r.json()["id"]
            device = f"e2e-{run}-{i}"
            r = api.post("/api/v1/devices", json={"id": device, "elder_id": elder_id})
            assert r.status_code == 201, r.text
            elders.append(TestElder(elder_id, name, device, lat, lon))
    return elders


def test_live_map_shows_moving_dots_and_alarms(live_system: Any, tmp_path: Path) -> None:
    with live_system.http() as api:
        config = api.get("/api/v1/config").json()
    center = tuple(config.get("center") or (34.867, 110.447))
    elders = _enrol(live_system, center)
    for e in elders:
        _publish_location(live_system, e)

    with chromium_page() as page:
        problems: list[str] = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.set_default_timeout(DEADLINE_MS)
        live_system.sign_in_page(page, "/")

        # First paint of /api/v1/latest, then the live link.
        page.wait_for_function("document.body.dataset.ready === '1'")
        page.wait_for_function("window.xingbei.connected()")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")

        # The three dots appear where the devices said, inside the visible map.
        _wait_for_positions(page, elders)
        before = {e.id: _screen_point(page, e.id) for e in elders}
        for e in elders:
            assert before[e.id]["inside"], f"dot of elder {e.id} is off screen: {before[e.id]}"

        # The devices move; so do the dots, live (no reload), on the map too.
        for e in elders:
            e.lat += MOVE[0]
            e.lon += MOVE[1]
            _publish_location(live_system, e)
        _wait_for_positions(page, elders)
        for e in elders:
            after = _screen_point(page, e.id)
            moved_px = math.dist((after["x"], after["y"]), (before[e.id]["x"], before[e.id]["y"]))
            assert moved_px > 5, f"dot of elder {e.id} moved only {moved_px:.1f} px"

        # Something goes wrong for the first elder: a heart rate of 150 and an SOS.
        sick = elders[0]
        vitals = _payload(sick, hr=150, spo2=96, battery=80, worn=True)
        live_system.publish(f"eldercare/v1/devices/{sick.device}/vitals", vitals)
        sos = _payload(sick, type="sos")
        live_system.publish(f"eldercare/v1/devices/{sick.device}/event", sos)
        page.wait_for_function(
            "(id) => window.xingbei.markers().some((m) => m.elder_id === id && m.red)",
            arg=sick.id,
        )
        others = {m["elder_id"]: m for m in page.evaluate("window.xingbei.markers()")}
        assert not any(others[e.id]["red"] for e in elders[1:]), "only the sick elder is red"
        # It is listed as needing attention.
        expect(page.locator(f'#attention-list [data-elder-id="{sick.id}"]')).to_be_visible()

        # Click its dot: the details card shows who it is and the heart rate.
        point = _screen_point(page, sick.id)
        page.mouse.click(point["x"], point["y"])
        page.wait_for_function("window.xingbei.selected() !== null")
        if page.evaluate("window.xingbei.selected()") != sick.id:
            # Another elder's dot was on top (a shared database); use the list entry.
            page.locator(f'#attention-list [data-elder-id="{sick.id}"]').click()
        page.wait_for_function("(id) => window.xingbei.selected() === id", arg=sick.id)
        card = page.locator("#card")
        expect(card.locator("#card-name")).to_have_text(sick.name)
        expect(card.locator('[data-field="hr"]')).to_contain_text("150")
        expect(card.locator('[data-field-time="hr"]')).not_to_be_empty()
        expect(card.locator("#card-reasons")).to_contain_text("SOS")

        page.screenshot(path=str(tmp_path / "dashboard.png"))

        # English is one click away, and the card follows.
        page.click("#lang-toggle")
        expect(page.locator('[data-row="hr"] .label')).to_have_text("Heart rate")
        expect(card.locator('[data-field="hr"]')).to_contain_text("150 bpm")

        assert not problems, problems
