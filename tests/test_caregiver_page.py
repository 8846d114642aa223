"""The caregiver's day on a phone: the /caregiver/ page against the real system.

``eldercare serve`` runs as its own process (``live_system``) with its dispatcher; the
page runs in headless Chromium at 375×667 with geolocation granted and the phone's
position set by the test. A caregiver, their shift and an elder are made through the
API; a 助急 order is requested by staff and the dispatcher offers it to the caregiver
(who stands at the elder's door, so no other caregiver in the database is nearer).

The page must show the new order without a reload and ring (vibrate / chime), then take
the caregiver through accept → depart → arrive → complete with big buttons; an arrival
from 600 m away must be refused with the distance shown, and the API must agree with the
page at every step. A second test races staff against the caregiver: the order is
cancelled while the caregiver's page still offers 接单, and the 409 must end in the
fresh state on the page, not in a dead end; a reject needs a reason, which is recorded.

Waits are on the page's read-only hook ``window.xingbeiCaregiver``, the DOM or the API,
with deadlines; no fixed sleeps.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

try:
    from tests.browser import chromium_page
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from browser import chromium_page

PHONE = {"width": 375, "height": 667}
DEADLINE_MS = 20_000
# The dispatcher is poked by the new order's NOTIFY; its push reaches the page at once.
PUSH_DEADLINE_MS = 10_000


def _offset(lat: float, lon: float, north_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lon


def _setup(api: httpx.Client, skills: list[str]) -> dict[str, Any]:
    """An elder at a spot of their own, and a caregiver on shift standing at the door."""
    config = api.get("/api/v1/config").json()
    clat, clon = config.get("center") or (34.867, 110.447)
    # Kilometres from the community centre (where other tests put their people), so
    # this test's caregiver is the nearest for the dispatcher.
    rnd = random.Random()
    lat = clat + 0.04 + rnd.random() * 0.02
    lon = clon + 0.04 + rnd.random() * 0.02
    tag = uuid.uuid4().hex[:4]
    name = f"护理页老人{tag}"
    address = f"杏北小区 {rnd.randint(1, 9)} 号楼 {rnd.randint(1, 6)}0{rnd.randint(1, 4)}"
    r = api.post(
        "/api/v1/elders", json={"name": name, "home_lat": lat, "home_lon": lon, "address": address}
    )
    assert r.status_code == 201, r.text
    elder_id = r.json()["id"]
    r = api.post(
        "/api/v1/caregivers",
        json={"name": f"护理员{tag}", "phone": "13800000000", "skills": skills},
    )
    assert r.status_code == 201, r.text
    cg = r.json()
    now = datetime.now(UTC)
    r = api.post(
        f"/api/v1/caregivers/{cg['id']}/shifts",
        json={
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=10)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    r = api.post(
        f"/api/v1/caregivers/{cg['id']}/position", json={"lat": lat, "lon": lon, "acc": 10}
    )
    assert r.status_code == 204, r.text
    return {
        "elder_id": elder_id,
        "elder_name": name,
        "address": address,
        "lat": lat,
        "lon": lon,
        "caregiver_id": cg["id"],
        "caregiver_name": cg["name"],
    }


def _order(api: httpx.Client, order_id: int) -> dict[str, Any]:
    r = api.get(f"/api/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _open_page(page: Page, live_system: Any, caregiver_id: int, lat: float, lon: float) -> None:
    """The caregiver signs in on the real login page and lands on their own page."""
    base_url = live_system.base_url
    page.context.grant_permissions(["geolocation"], origin=base_url)
    page.context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
    page.set_default_timeout(DEADLINE_MS)
    live_system.sign_in_page(
        page, "/caregiver/", f"carer-{caregiver_id}", "caregiver", caregiver_id=caregiver_id
    )
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.wait_for_function("window.xingbeiCaregiver.connected()")


def _state_on_page(page: Page, order_id: int, state: str) -> None:
    page.wait_for_function(
        "([id, s]) => window.xingbeiCaregiver.orders().some((o) => o.id === id && o.state === s)",
        arg=[order_id, state],
    )


def _watch_problems(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    # The refusals this test provokes (409) are logged by the browser as failed loads.
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and "status of 409" not in m.text
            else None
        ),
    )
    return problems


def test_a_caregivers_day_on_the_phone(live_system: Any, tmp_path: Path) -> None:
    with live_system.http() as api:
        s = _setup(api, ["first_aid", "housekeeping"])
    cid = s["caregiver_id"]
    # The phone stands 20 m from the elder's door.
    near = _offset(s["lat"], s["lon"], 20)

    with chromium_page(viewport=PHONE) as page:
        problems = _watch_problems(page)
        _open_page(page, live_system, cid, *near)
        expect(page.locator("#cg-who")).to_contain_text(s["caregiver_name"])
        expect(page.locator("#cg-shift")).to_have_text("在班")
        expect(page.locator("#cg-open")).to_contain_text("今天暂无服务订单")

        # On shift: the page reports the phone's position at once (then every 30 s).
        page.wait_for_function("window.xingbeiCaregiver.position().sent >= 1")
        with live_system.http() as api:
            me = api.get(f"/api/v1/caregivers/{cid}").json()
        assert math.isclose(me["last_lat"], near[0], abs_tol=1e-6), me
        assert math.isclose(me["last_lon"], near[1], abs_tol=1e-6), me

        # Sound: the tap on the login page has already let this site play audio (the
        # browser's autoplay rule); otherwise a tap on the button unlocks it.
        if page.locator("#cg-sound").is_visible():
            page.locator("#cg-sound").click()
        page.wait_for_function("window.xingbeiCaregiver.sound().enabled")

        # Staff request 助急; the dispatcher offers it to this caregiver; the page
        # shows it without a reload and rings.
        with live_system.http() as api:
            r = api.post(
                "/api/v1/orders",
                json={"elder_id": s["elder_id"], "kind": "emergency", "notes": "老人说胸闷"},
            )
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
        page.wait_for_function(
            "(id) => window.xingbeiCaregiver.orders().some((o) => o.id === id && o.state === 'assigned')",
            arg=order_id,
            timeout=PUSH_DEADLINE_MS,
        )
        note = page.evaluate(
            "(id) => window.xingbeiCaregiver.notifications().find((n) => n.order_id === id)",
            order_id,
        )
        assert note and note["urgent"] and note["played"], note
        card = page.locator(f'#cg-open li[data-order-id="{order_id}"]')
        expect(card).to_contain_text("助急")
        expect(card).to_contain_text(s["elder_name"])
        expect(card).to_contain_text(s["address"])
        expect(card).to_contain_text("接单时限")
        expect(card.locator(".countdown")).to_contain_text("还剩")
        expect(card.locator('[data-role="state"]')).to_have_text("待接单")
        expect(page.locator("#cg-flash")).to_contain_text("新订单")

        page.screenshot(path=str(tmp_path / "caregiver-offered.png"))
        # Phone-sized: nothing wider than the screen, every button a real touch target.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        buttons = card.locator("button")
        assert sorted(buttons.all_inner_texts()) == sorted(["接单", "拒绝"])
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box and box["height"] >= 44 and box["width"] >= 44, box

        card.locator('button[data-action="accept"]').click()
        expect(card.locator('[data-role="state"]')).to_have_text("已接单")
        with live_system.http() as api:
            assert _order(api, order_id)["state"] == "accepted"
        expect(card).to_contain_text("到达时限")

        card.locator('button[data-action="depart"]').click()
        expect(card.locator('[data-role="state"]')).to_have_text("在途")

        # Checking in from 600 m away is refused, and the page says how far and why.
        far = _offset(s["lat"], s["lon"], 600)
        page.context.set_geolocation({"latitude": far[0], "longitude": far[1], "accuracy": 10})
        card.locator('button[data-action="arrive"]').click()
        msg = card.locator(".job-msg")
        expect(msg).to_be_visible()
        expect(msg).to_contain_text("距离老人")
        expect(msg).to_contain_text("150 米")
        page.screenshot(path=str(tmp_path / "caregiver-too-far.png"))
        shown = page.evaluate("(id) => window.xingbeiCaregiver.message(id)", order_id)
        assert 560 <= shown["distance_m"] <= 640, shown
        with live_system.http() as api:
            assert _order(api, order_id)["state"] == "en_route"
        expect(card.locator('[data-role="state"]')).to_have_text("在途")

        # A fix as rough as a cell tower's proves nothing at 150 m: refused, and why.
        page.context.set_geolocation({"latitude": near[0], "longitude": near[1], "accuracy": 800})
        card.locator('button[data-action="arrive"]').click()
        expect(msg).to_contain_text("定位太粗（±800 米）")

        # At the door the check-in passes.
        page.context.set_geolocation({"latitude": near[0], "longitude": near[1], "accuracy": 10})
        card.locator('button[data-action="arrive"]').click()
        expect(card.locator('[data-role="state"]')).to_have_text("服务中")
        expect(msg).to_be_hidden()

        card.locator('button[data-action="complete"]').click()
        expect(page.locator("#complete-dialog")).to_be_visible()
        page.fill("#complete-note", "已陪同测量血压，情况平稳")
        page.click('#complete-dialog button[value="ok"]')
        done = page.locator(f'#cg-closed li[data-order-id="{order_id}"]')
        expect(done.locator('[data-role="state"]')).to_have_text("已完成")
        expect(page.locator(f'#cg-open li[data-order-id="{order_id}"]')).to_have_count(0)
        with live_system.http() as api:
            final = _order(api, order_id)
        assert final["state"] == "completed"
        assert final["completion_note"] == "已陪同测量血压，情况平稳"
        arrive = [st for st in final["steps"] if st["action"] == "arrive"]
        assert len(arrive) == 1 and arrive[0]["actor_role"] == "caregiver"

        # English on the same phone.
        page.click("#lang-toggle")
        expect(done.locator('[data-role="state"]')).to_have_text("completed")
        expect(page.locator("h1")).to_have_text("Today's services")
        assert not problems, problems


def test_a_conflict_shows_the_fresh_state_and_a_reject_needs_a_reason(live_system: Any) -> None:
    with live_system.http() as api:
        s = _setup(api, ["housekeeping"])
    cid = s["caregiver_id"]
    near = _offset(s["lat"], s["lon"], 10)

    with chromium_page(viewport=PHONE) as page:
        problems = _watch_problems(page)
        _open_page(page, live_system, cid, *near)
        with live_system.http() as api:
            first = api.post(
                "/api/v1/orders", json={"elder_id": s["elder_id"], "kind": "cleaning"}
            ).json()["id"]
        _state_on_page(page, first, "assigned")

        # Staff cancel it while the page still offers 接单; the caregiver taps in the same
        # instant (before the push arrives): the server says 409 and the page shows the
        # order as it now is.
        page.evaluate(
            """async ([id, staff]) => {
                const r = await fetch(`/api/v1/orders/${id}/steps`, {
                  method: 'POST', headers: {'Content-Type': 'application/json', ...staff},
                  body: JSON.stringify({action: 'cancel'}),
                });
                if (r.status !== 200) throw new Error(`cancel: ${r.status}`);
                document.querySelector(
                  `#cg-open li[data-order-id="${id}"] button[data-action="accept"]`).click();
            }""",
            [first, live_system.auth()],  # staff, at the big screen
        )
        expect(page.locator("#cg-flash")).to_contain_text("订单状态已变化（当前：已取消）")
        cancelled = page.locator(f'#cg-closed li[data-order-id="{first}"]')
        expect(cancelled.locator('[data-role="state"]')).to_have_text("已取消")
        expect(cancelled.locator("button")).to_have_count(0)

        # Declining asks for a reason, and the reason is what the order's history records.
        with live_system.http() as api:
            second = api.post(
                "/api/v1/orders", json={"elder_id": s["elder_id"], "kind": "cleaning"}
            ).json()["id"]
        _state_on_page(page, second, "assigned")
        card = page.locator(f'#cg-open li[data-order-id="{second}"]')
        card.locator('button[data-action="reject"]').click()
        expect(page.locator("#reject-dialog")).to_be_visible()
        page.click('#reject-dialog button[value="ok"]')  # no reason chosen: refused by the form
        expect(page.locator("#reject-dialog")).to_be_visible()
        page.locator('#reject-dialog input[value="ill"]').check()
        page.fill("#reject-text", "发烧了")
        page.click('#reject-dialog button[value="ok"]')
        expect(page.locator("#cg-flash")).to_contain_text("拒绝")
        with live_system.http() as api:
            order = _order(api, second)
        rejects = [st for st in order["steps"] if st["action"] == "reject"]
        assert rejects and rejects[0]["note"] == "身体不适：发烧了", order["steps"]
        assert rejects[0]["actor_role"] == "caregiver" and rejects[0]["actor_id"] == cid
        # The page no longer offers it to this caregiver.
        page.wait_for_function(
            "(id) => !window.xingbeiCaregiver.orders().some((o) => o.id === id && o.state === 'assigned')",
            arg=second,
        )
        assert not problems, problems


def test_the_page_says_when_it_does_not_know_who_is_using_it(live_system: Any) -> None:
    with live_system.http() as api:
        # The short address works too.
        r = api.get("/caregiver", follow_redirects=True)
        assert r.status_code == 200 and "今日服务" in r.text, r.status_code
    with chromium_page(viewport=PHONE) as page:
        page.set_default_timeout(DEADLINE_MS)
        # Signed out: the page sends the caregiver to sign in, and back afterwards.
        page.goto(f"{live_system.base_url}/caregiver/?id=987654")
        page.wait_for_url(f"{live_system.base_url}/login/?next=*")
        # Signed in with an account that is not a caregiver's: ?id= does not make it one.
        live_system.sign_in_page(page, "/caregiver/?id=987654", "duty-staff", "staff")
        page.wait_for_function("document.body.dataset.ready === '1'")
        expect(page.locator("#cg-problem")).to_contain_text("此账号不是护理员账号")
        assert page.evaluate("window.xingbeiCaregiver.id()") is None


def test_the_caregiver_page_is_offline_ready_and_fully_translated() -> None:
    # No browser: the page names only local assets, and every text key it uses exists
    # in both languages (tests/test_dashboard_static.py checks the same for the big screen).
    from dashboard import CAREGIVER_HTML, STATIC_DIR

    html = CAREGIVER_HTML.read_text(encoding="utf-8")
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/static/") or url.startswith("data:"), url
        if url.startswith("/static/"):
            assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url
    src = (STATIC_DIR / "js" / "i18n.js").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"\n  (zh|en): \{\n(.*?)\n  \},", src, flags=re.S))
    keys = {
        lang: set(re.findall(r"^\s+'([\w.]+)':", body, flags=re.M)) for lang, body in blocks.items()
    }
    used = set(re.findall(r'data-i18n(?:-title)?="([\w.]+)"', html))
    assert used and used <= keys["zh"] and used <= keys["en"], used - (keys["zh"] & keys["en"])
