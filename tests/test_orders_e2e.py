"""End to end with real parts: an elder's watch sends SOS over MQTT → the ingest and
detection raise a critical alert → a 助急 order in the same transaction → the
dispatcher offers it to the caregiver on shift nearest the elder → the caregiver
accepts, sets off, checks in at the door and completes, all through the API of a real
``eldercare serve`` process; the alert and the order then tell the same story."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx

from conftest import LiveSystem, wait_until

HOME = (34.8670, 110.4470)


def test_an_sos_becomes_an_emergency_order_that_a_caregiver_completes(
    live_system: LiveSystem,
) -> None:
    with live_system.http() as http:
        elder = http.post(
            "/api/v1/elders",
            json={
                "name": "马秀珍",
                "home_lat": HOME[0],
                "home_lon": HOME[1],
                "address": "杏北3-2-301",
            },
        ).json()
        device = http.post("/api/v1/devices", json={"id": "e2e-order-sos", "elder_id": elder["id"]})
        assert device.status_code == 201, device.text
        # A first-aider on shift 400 m away, and a nearer cook who cannot help.
        medic = make_caregiver(http, "黄志强", ["first_aid", "nursing"], (34.8706, 110.4470))
        make_caregiver(http, "何美兰", ["meal_delivery"], (34.8672, 110.4470))
        me = live_system.headers_for(f"carer-{medic}", "caregiver", caregiver_id=medic)

        sent = time.monotonic()
        live_system.publish(
            "eldercare/v1/devices/e2e-order-sos/event",
            json.dumps({"ts": int(time.time() * 1000), "seq": 1, "type": "sos"}).encode(),
        )

        def offered() -> dict | None:
            items = http.get(
                "/api/v1/orders", params={"elder_id": elder["id"], "kind": "emergency"}
            ).json()["items"]
            return items[0] if items and items[0]["state"] == "assigned" else None

        order = wait_until(offered, timeout=30, interval=0.2)
        offer_s = time.monotonic() - sent
        assert isinstance(order, dict)
        assert order["caregiver_id"] == medic and order["source"] == "alert"
        assert order["alert_id"] is not None
        assert offer_s < 10, f"the SOS took {offer_s:.1f}s to reach a caregiver"

        mine = http.get(f"/api/v1/caregivers/{medic}/today", headers=me).json()["items"]
        assert [o["id"] for o in mine] == [order["id"]]
        assert mine[0]["allowed_actions"] == ["accept", "reject"]
        steps = [
            ("accept", {}),
            ("depart", {}),
            ("arrive", {"lat": 34.8677, "lon": 110.4471, "acc": 15}),  # ~80 m: the stairwell
            ("complete", {"note": "老人摔倒后可自行站立，已陪同，家属已通知"}),
        ]
        for action, extra in steps:
            r = http.post(
                f"/api/v1/orders/{order['id']}/steps",
                json={"action": action, **extra},
                headers=me,
            )
            assert r.status_code == 200, f"{action}: {r.text}"
        assert r.json()["state"] == "completed"

        done = http.get(f"/api/v1/orders/{order['id']}").json()
        alert = http.get(f"/api/v1/alerts/{order['alert_id']}").json()

    assert alert["kind"] == "sos" and alert["severity"] == "critical"
    assert alert["elder_id"] == elder["id"]
    requested = [h for h in alert["history"] if h["action"] == "emergency_order_requested"]
    assert [h["detail"]["order"] for h in requested] == [order["id"]]

    assert done["alert_id"] == alert["id"] and done["state"] == "completed"
    assert done["completion_note"].startswith("老人摔倒后")
    trail = [(s["action"], s["actor_role"]) for s in done["steps"] if s["action"] != "late"]
    assert trail == [
        ("request", "system"),
        ("assign", "system"),
        ("accept", "caregiver"),
        ("depart", "caregiver"),
        ("arrive", "caregiver"),
        ("complete", "caregiver"),
    ]
    check_in = next(s for s in done["steps"] if s["action"] == "arrive")["detail"]
    assert check_in["verdict"] == "accepted" and check_in["distance_m"] < 150
    assert done["breaches"] == []  # accepted within 2 minutes, at the door within 15


def make_caregiver(
    http: httpx.Client, name: str, skills: list[str], where: tuple[float, float]
) -> int:
    c = http.post("/api/v1/caregivers", json={"name": name, "skills": skills}).json()
    now = datetime.now(UTC)
    shift = {
        "starts_at": (now - timedelta(hours=2)).isoformat(),
        "ends_at": (now + timedelta(hours=6)).isoformat(),
    }
    assert http.post(f"/api/v1/caregivers/{c['id']}/shifts", json=shift).status_code == 201
    fix = {"lat": where[0], "lon": where[1], "acc": 10}
    assert http.post(f"/api/v1/caregivers/{c['id']}/position", json=fix).status_code == 204
    return int(c["id"])
