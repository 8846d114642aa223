"""The staff's order board on the big screen, against the real system.

``eldercare serve`` runs as its own process (``live_system``) with its dispatcher; the
dashboard runs in headless Chromium. Elders (with a device reporting a position, so
they are dots on the map) and caregivers on shift are made through the API; each test's
caregiver stands at its elder's door, so the dispatcher, choosing the nearest, picks
them and not a caregiver some other test left in the database.

What staff must see without reloading: caregivers on the map as their own markers,
moving when their phone reports; the open orders grouped by kind with their state and
caregiver, moving through the states as the caregiver acts; a target missed shown in
red; cancelling from the board; and from an elder's card, a new order dispatched by the
dispatcher or by hand to the caregiver staff pick.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from playwright.sync_api import Page, expect

from orders.lifecycle import Actor
from storage import orders as stored_orders

try:
    from tests.browser import chromium_page
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from browser import chromium_page

DEADLINE_MS = 20_000
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _setup(live_system: Any, skills: list[str]) -> dict[str, Any]:
    """An elder with a device near the centre, and a caregiver on shift at their door."""
    with psycopg.connect(live_system.database_url) as conn:
        # Only this test's caregiver is on shift (the database outlives a test): the
        # dispatcher's nearest qualified pick is then known.
        conn.execute("DELETE FROM caregiver_shifts")
    with live_system.http() as api:
        config = api.get("/api/v1/config").json()
        clat, clon = config.get("center") or (34.867, 110.447)
        rnd = random.Random()
        # A few hundred metres from the centre: on the map's first view, but a spot of
        # this test's own.
        lat = clat + rnd.uniform(-0.002, 0.002)
        lon = clon + rnd.uniform(-0.002, 0.002)
        tag = uuid.uuid4().hex[:4]
        name = f"看板老人{tag}"
        r = api.post("/api/v1/elders", json={"name": name, "home_lat": lat, "home_lon": lon})
        assert r.status_code == 201, r.text
        elder_id = r.json()["id"]
        device = f"board-{uuid.uuid4().hex[:8]}"
        r = api.post("/api/v1/devices", json={"id": device, "elder_id": elder_id})
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/caregivers", json={"name": f"看板护理员{tag}", "skills": skills})
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
            f"/api/v1/caregivers/{cg['id']}/position", json={"lat": lat, "lon": lon, "acc": 8}
        )
        assert r.status_code == 204, r.text
    body = {"ts": int(time.time() * 1000), "seq": 1, "lat": lat, "lon": lon, "acc": 8, "src": "gps"}
    live_system.publish(f"eldercare/v1/devices/{device}/location", json.dumps(body).encode())
    return {
        "elder_id": elder_id,
        "elder_name": name,
        "lat": lat,
        "lon": lon,
        "caregiver_id": cg["id"],
        "caregiver_name": cg["name"],
    }


def _open_dashboard(page: Page, live_system: Any, elder_id: int) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and "status of 409" not in m.text  # refusals this test provokes
            else None
        ),
    )
    page.set_default_timeout(DEADLINE_MS)
    live_system.sign_in_page(page, "/")
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.wait_for_function("window.xingbei.connected() && window.xingbei.ordersLoaded()")
    page.wait_for_function(
        "(id) => window.xingbei.markers().some((m) => m.elder_id === id)", arg=elder_id
    )
    return problems


def _board_order(page: Page, order_id: int) -> dict[str, Any] | None:
    return page.evaluate(
        "(id) => window.xingbei.orders().find((o) => o.id === id) || null", order_id
    )


def _wait_board_state(page: Page, order_id: int, state: str) -> None:
    page.wait_for_function(
        "([id, s]) => window.xingbei.orders().some((o) => o.id === id && o.state === s)",
        arg=[order_id, state],
    )


def _create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    r = api.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _step(api: httpx.Client, order_id: int, actor: dict[str, str], **body: Any) -> dict[str, Any]:
    """A step taken by ``actor`` (the headers of a signed-in caregiver)."""
    r = api.post(f"/api/v1/orders/{order_id}/steps", json=body, headers=actor)
    assert r.status_code == 200, r.text
    return r.json()


def _order(api: httpx.Client, order_id: int) -> dict[str, Any]:
    r = api.get(f"/api/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_board_follows_orders_and_caregivers_live(
    live_system: Any, db: psycopg.Connection, tmp_path: Path
) -> None:
    s = _setup(live_system, ["housekeeping", "meal_delivery"])
    cid = s["caregiver_id"]
    me = live_system.headers_for(f"carer-{cid}", "caregiver", caregiver_id=cid)
    with chromium_page() as page:
        problems = _open_dashboard(page, live_system, s["elder_id"])

        # The caregiver is on the map, as a marker of their own, and follows their phone.
        page.wait_for_function(
            "(id) => window.xingbei.caregivers().some((c) => c.id === id)", arg=cid
        )
        expect(page.locator(f'.cg-marker [data-caregiver-id="{cid}"]')).to_be_visible()
        moved = (s["lat"] + 0.0005, s["lon"])
        with live_system.http() as api:
            r = api.post(
                f"/api/v1/caregivers/{cid}/position",
                json={"lat": moved[0], "lon": moved[1], "acc": 8},
            )
            assert r.status_code == 204, r.text
        page.wait_for_function(
            "([id, lat]) => window.xingbei.caregivers().some((c) => c.id === id"
            " && Math.abs(c.lat - lat) < 1e-7)",
            arg=[cid, moved[0]],
        )

        page.click("#orders-tab")
        expect(page.locator("#orders-view")).to_be_visible()

        # An order staff request elsewhere appears, offered to the caregiver by the dispatcher.
        with live_system.http() as api:
            cleaning = _create(api, elder_id=s["elder_id"], kind="cleaning")["id"]
        _wait_board_state(page, cleaning, "assigned")
        assert _board_order(page, cleaning)["caregiver_id"] == cid
        row = page.locator(f'section[data-kind="cleaning"] li[data-order-id="{cleaning}"]')
        expect(row).to_contain_text(s["elder_name"])
        expect(row).to_contain_text(s["caregiver_name"])
        expect(row).to_contain_text("接单时限")
        expect(row.locator('[data-role="state"]')).to_have_text("待接单")
        expect(page.locator('section[data-kind="cleaning"] h3')).to_contain_text("助洁")

        # The caregiver acts on their phone; the board follows.
        with live_system.http() as api:
            _step(api, cleaning, me, action="accept")
        expect(row.locator('[data-role="state"]')).to_have_text("已接单")
        with live_system.http() as api:
            _step(api, cleaning, me, action="depart")
        expect(row.locator('[data-role="state"]')).to_have_text("在途")
        expect(row).to_contain_text("到达时限")

        # A lunch asked for two hours ago (through the store, with its clock set back)
        # missed its 30-minute accept target long ago: once the dispatcher offers it,
        # its countdown is red and the tab says something is late.
        requested = datetime.now(UTC) - timedelta(hours=2)
        meal, _ = stored_orders.create_order_sync(
            db, elder_id=s["elder_id"], kind="meal", actor=Actor("staff", 0), at=requested
        )
        db.commit()
        page.wait_for_function(
            "(id) => window.xingbei.orders().some((o) => o.id === id && o.breached"
            " && o.state === 'assigned')",
            arg=meal,
        )
        meal_row = page.locator(f'section[data-kind="meal"] li[data-order-id="{meal}"]')
        late = meal_row.locator(".countdown.late")
        expect(late).to_be_visible()
        expect(late).to_contain_text(re.compile(r"已超时 1 小时 3\d 分"))
        assert late.evaluate("(n) => getComputedStyle(n).backgroundColor") == "rgb(229, 57, 53)"
        expect(meal_row).to_have_class(re.compile(r"\bbreached\b"))
        expect(page.locator("#orders-tab-count")).to_have_class(re.compile(r"\bhot\b"))
        expect(row.locator(".countdown")).not_to_have_class(re.compile(r"\blate\b"))
        page.screenshot(path=str(tmp_path / "board.png"))

        # Cancelled from the board: two taps, then the API and the board agree.
        cancel = meal_row.locator('button[data-action="cancel"]')
        cancel.click()
        expect(cancel).to_have_text("确认取消？")
        cancel.click()
        _wait_board_state(page, meal, "cancelled")
        with live_system.http() as api:
            assert _order(api, meal)["state"] == "cancelled"
        expect(meal_row.locator('[data-role="state"]')).to_have_text("已取消")
        expect(meal_row.locator("button")).to_have_count(0)
        expect(page.locator("#alerts-flash")).to_contain_text("已取消")

        # Finished on the phone: shown as completed, no longer counted as open.
        with live_system.http() as api:
            _step(api, cleaning, me, action="arrive", lat=s["lat"], lon=s["lon"], acc=8)
            _step(api, cleaning, me, action="complete", note="done")
        _wait_board_state(page, cleaning, "completed")
        expect(row.locator('[data-role="state"]')).to_have_text("已完成")

        # The same board in English.
        page.click("#lang-toggle")
        expect(row.locator('[data-role="state"]')).to_have_text("completed")
        expect(page.locator('section[data-kind="cleaning"] h3')).to_contain_text("Cleaning")
        expect(page.locator("#orders-tab")).to_contain_text("Orders")
        assert not problems, problems


def _click_elder(page: Page, elder_id: int) -> None:
    pt = page.evaluate("(id) => window.xingbei.screenPoint(id)", elder_id)
    assert pt and pt["inside"], pt
    page.mouse.click(pt["x"], pt["y"])
    page.wait_for_function("(id) => window.xingbei.selected() === id", arg=elder_id)


def test_create_and_dispatch_from_the_elders_card(live_system: Any, tmp_path: Path) -> None:
    s = _setup(live_system, ["housekeeping"])
    cid = s["caregiver_id"]
    with chromium_page() as page:
        problems = _open_dashboard(page, live_system, s["elder_id"])
        page.wait_for_function(
            "(id) => window.xingbei.caregivers().some((c) => c.id === id)", arg=cid
        )
        _click_elder(page, s["elder_id"])
        box = page.locator("#card-orders")
        expect(box).to_be_visible()
        expect(box).to_contain_text("暂无进行中的服务")

        # 助洁 now, dispatched automatically: the dispatcher picks the caregiver at the door.
        page.click("#card-new-order")
        dialog = page.locator("#order-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(s["elder_name"])
        assert dialog.locator("#order-kinds label").count() == 6
        dialog.locator("#order-kinds label", has_text="助洁").click()
        dialog.locator('textarea[name="notes"]').fill("擦窗户")
        page.screenshot(path=str(tmp_path / "new-order.png"))
        dialog.locator('button[value="ok"]').click()
        expect(page.locator("#alerts-flash")).to_contain_text(f"已派给 {s['caregiver_name']}")
        expect(box).to_contain_text("助洁")
        expect(box).to_contain_text("待接单")
        page.screenshot(path=str(tmp_path / "card-with-order.png"))
        with live_system.http() as api:
            mine = api.get("/api/v1/orders", params={"elder_id": s["elder_id"]}).json()["items"]
        assert len(mine) == 1, mine
        first = mine[0]
        assert (first["kind"], first["state"], first["caregiver_id"], first["notes"]) == (
            "cleaning",
            "assigned",
            cid,
            "擦窗户",
        )
        assert first["source"] == "staff"

        # Booked three days ahead, when nobody has a shift: the dispatcher cannot place
        # it, so staff pick the caregiver by hand in the same dialog.
        day = (datetime.now(SHANGHAI) + timedelta(days=3)).date()
        page.click("#card-new-order")
        dialog.locator("#order-kinds label", has_text="助洁").click()
        page.fill("#order-due", f"{day.isoformat()}T10:00")
        dialog.locator('input[name="mode"][value="manual"]').check()
        page.select_option("#order-caregiver", str(cid))
        dialog.locator('button[value="ok"]').click()
        page.wait_for_function(
            "([e, c]) => window.xingbei.orders().filter((o) => o.elder_id === e"
            " && o.state === 'assigned' && o.caregiver_id === c).length === 2",
            arg=[s["elder_id"], cid],
        )
        expect(page.locator("#alerts-flash")).to_contain_text(f"已派给 {s['caregiver_name']}")
        with live_system.http() as api:
            mine = api.get("/api/v1/orders", params={"elder_id": s["elder_id"]}).json()["items"]
        booked = next(o for o in mine if o["id"] != first["id"])
        due = datetime.fromisoformat(booked["due_at"].replace("Z", "+00:00"))
        assert due == datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI), booked
        assert (booked["state"], booked["caregiver_id"]) == ("assigned", cid), booked
        with live_system.http() as api:
            steps = _order(api, booked["id"])["steps"]
        assign = [st for st in steps if st["action"] == "assign"]
        assert assign[-1]["actor_role"] == "staff", steps

        # The board lists both; a click on one selects its elder.
        page.click("#orders-tab")
        item = page.locator(f'#orders-groups li[data-order-id="{booked["id"]}"]')
        expect(item).to_contain_text("预约")
        expect(item.locator('[data-role="state"]')).to_have_text("待接单")
        page.click("#card-close")
        page.wait_for_function("window.xingbei.selected() === null")
        item.locator(".o-name").click()
        page.wait_for_function("(id) => window.xingbei.selected() === id", arg=s["elder_id"])
        assert not problems, problems


def test_staff_assign_by_hand_what_the_dispatcher_cannot_place(live_system: Any) -> None:
    s = _setup(live_system, ["housekeeping"])
    cid = s["caregiver_id"]
    day = (datetime.now(SHANGHAI) + timedelta(days=3)).date()
    booked_for = datetime(day.year, day.month, day.day, 9, 30, tzinfo=SHANGHAI)
    with chromium_page() as page:
        problems = _open_dashboard(page, live_system, s["elder_id"])
        page.click("#orders-tab")
        with live_system.http() as api:
            oid = _create(
                api, elder_id=s["elder_id"], kind="cleaning", due_at=booked_for.isoformat()
            )["id"]
        _wait_board_state(page, oid, "requested")
        item = page.locator(f'#orders-groups li[data-order-id="{oid}"]')
        expect(item.locator('[data-role="state"]')).to_have_text("待派单")

        # Asking the dispatcher says why nobody can take it; the order stays waiting.
        item.locator('button[data-action="dispatch"]').click()
        expect(page.locator("#alerts-flash")).to_contain_text("暂无可派的护理员")
        expect(item.locator(".o-why")).to_contain_text("没有在班")
        expect(item.locator('[data-role="state"]')).to_have_text("待派单")

        item.locator('button[data-action="assign"]').click()
        expect(page.locator("#assign-dialog")).to_be_visible()
        page.select_option("#assign-caregiver", str(cid))
        page.click('#assign-dialog button[value="ok"]')
        expect(item.locator('[data-role="state"]')).to_have_text("待接单")
        expect(item).to_contain_text(s["caregiver_name"])
        with live_system.http() as api:
            o = _order(api, oid)
        assert (o["state"], o["caregiver_id"]) == ("assigned", cid), o
        assert not problems, problems
