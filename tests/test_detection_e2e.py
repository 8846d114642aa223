"""End to end with real parts: a wearable publishes over MQTT → ingest → detection →
an alert row and a WebSocket message on the dashboard; staff handle it."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
from websockets.sync.client import connect

from conftest import LiveSystem, wait_until
from simulator.accel import fall_burst


def enrol(live: LiveSystem, device_id: str, name: str) -> int:
    with live.http() as http:
        elder = http.post(
            "/api/v1/elders", json={"name": name, "home_lat": 34.867, "home_lon": 110.447}
        ).json()
        r = http.post("/api/v1/devices", json={"id": device_id, "elder_id": elder["id"]})
        assert r.status_code == 201, r.text
    return int(elder["id"])


def alert_messages(ws, elder_id: int, kind: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            break
        if (
            msg["type"] == "alert"
            and msg["alert"]["elder_id"] == elder_id
            and msg["alert"]["kind"] == kind
        ):
            return msg["alert"]
    raise AssertionError(f"no {kind} alert for elder {elder_id} within {timeout}s")


def test_sos_over_mqtt_becomes_an_alert_row_and_a_websocket_message(
    live_system: LiveSystem,
) -> None:
    elder = enrol(live_system, "e2e-sos", "周玉兰")
    ws_url = live_system.base_url.replace("http", "ws") + "/ws/live"
    with connect(ws_url, additional_headers=live_system.auth()) as ws:
        sent = time.monotonic()
        live_system.publish(
            "eldercare/v1/devices/e2e-sos/event",
            json.dumps({"ts": int(time.time() * 1000), "seq": 1, "type": "sos"}).encode(),
        )
        alert = alert_messages(ws, elder, "sos")
        latency = time.monotonic() - sent
    assert alert["severity"] == "critical" and alert["state"] == "open"
    assert alert["elder_name"] == "周玉兰"
    assert latency < 5, f"an SOS took {latency:.1f}s to reach the dashboard"
    with psycopg.connect(live_system.database_url) as conn:
        rows = conn.execute(
            "SELECT kind, severity, state FROM alerts WHERE elder_id = %s", (elder,)
        ).fetchall()
        assert rows == [("sos", "critical", "open")]
        actions = [
            a
            for (a,) in conn.execute(
                "SELECT action FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE a.elder_id = %s"
                " ORDER BY e.id",
                (elder,),
            )
        ]
        assert actions[0] == "opened" and "emergency_order_requested" in actions
    with live_system.http() as http:
        ack = http.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "值班员 李"})
        assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
        done = http.post(
            f"/api/v1/alerts/{alert['id']}/resolve",
            json={"by": "值班员 李", "outcome": "handled", "note": "已电话确认"},
        )
        assert done.json()["state"] == "resolved"
        assert http.get("/api/v1/alerts", params={"state": "active"}).json()["count"] == 0


def test_a_second_sos_while_open_repeats_the_same_alert(live_system: LiveSystem) -> None:
    elder = enrol(live_system, "e2e-rep", "吴德福")
    ms = int(time.time() * 1000)
    for seq in (1, 2, 3):
        live_system.publish(
            "eldercare/v1/devices/e2e-rep/event",
            json.dumps({"ts": ms + seq * 1000, "seq": seq, "type": "sos"}).encode(),
        )
    with live_system.http() as http:

        def three() -> list | None:
            data = http.get("/api/v1/alerts", params={"elder_id": elder}).json()["data"]
            return data if data and data[0]["count"] == 3 else None

        (alert,) = wait_until(three, timeout=20, interval=0.2)
    assert alert["kind"] == "sos" and alert["state"] == "open"


def test_a_fall_confirmed_by_its_burst_alarms_and_i_am_ok_withdraws_it(
    live_system: LiveSystem,
) -> None:
    import numpy as np

    elder = enrol(live_system, "e2e-fall", "郑桂芳")
    ms = int(time.time() * 1000)
    burst = fall_burst(np.random.default_rng(3))
    live_system.publish(
        "eldercare/v1/devices/e2e-fall/event",
        json.dumps({"ts": ms, "seq": 1, "type": "fall", "accel": {"hz": 50, "g": burst}}).encode(),
    )
    with live_system.http() as http:

        def fall_alert() -> dict | None:
            data = http.get("/api/v1/alerts", params={"elder_id": elder, "kind": "fall"}).json()[
                "data"
            ]
            return data[0] if data else None

        alert = wait_until(fall_alert, timeout=20, interval=0.2)
        assert alert["severity"] == "critical"
        live_system.publish(
            "eldercare/v1/devices/e2e-fall/event",
            json.dumps({"ts": ms + 20_000, "seq": 2, "type": "cancel"}).encode(),
        )

        def withdrawn() -> dict | None:
            a = http.get(f"/api/v1/alerts/{alert['id']}").json()
            return a if a["state"] == "resolved" else None

        final = wait_until(withdrawn, timeout=20, interval=0.2)
    assert final["outcome"] == "withdrawn"


def test_rule_state_is_saved_when_the_service_stops(live_system: LiveSystem) -> None:
    elder = enrol(live_system, "e2e-state", "冯淑华")
    ms = int(time.time() * 1000)
    live_system.publish(
        "eldercare/v1/devices/e2e-state/vitals",
        json.dumps(
            [
                {
                    "ts": ms - (10 - i) * 60_000,
                    "seq": i,
                    "hr": 72,
                    "spo2": 97,
                    "steps": 100 * i,
                    "worn": True,
                }
                for i in range(10)
            ]
        ).encode(),
    )
    with live_system.http() as http:
        wait_until(lambda: http.get("/api/v1/latest").json()["elders"][-1]["hr"] == 72, timeout=15)
    time.sleep(0.5)  # the detection thread takes the committed batch
    live_system.process.terminate()
    live_system.process.wait(20)
    with psycopg.connect(live_system.database_url) as conn:
        row = conn.execute(
            "SELECT state FROM detector_state WHERE elder_id = %s", (elder,)
        ).fetchone()
    assert row is not None and row[0]["watermark"] is not None
    assert "news2_hr" in row[0]["rules"]


def test_per_elder_thresholds_take_effect_on_a_running_system(live_system: LiveSystem) -> None:
    """Staff raise one elder's low-battery threshold; the running detector follows."""
    elder = enrol(live_system, "e2e-thr", "陈桂英")
    live_system.publish(
        "eldercare/v1/devices/e2e-thr/vitals",
        json.dumps(
            {"ts": int(time.time() * 1000) - 60_000, "seq": 1, "battery": 40, "worn": True}
        ).encode(),
    )
    with live_system.http() as http:
        wait_until(
            lambda: any(e["battery"] == 40 for e in http.get("/api/v1/latest").json()["elders"])
        )
        wait_until(lambda: _detection_caught_up(http))  # the 40 % is judged under the old rule
        assert http.get("/api/v1/alerts", params={"elder_id": elder}).json()["count"] == 0
        r = http.put(
            f"/api/v1/elders/{elder}/thresholds",
            json={"thresholds": {"battery": {"low_pct": 45, "clear_pct": 60}}, "by": "管理员"},
        )
        assert r.status_code == 200, r.text
        seq = iter(range(2, 10_000))

        def low_battery() -> list | None:
            # keep reporting 39 % until the detector, rebuilt on its next tick, sees it as low
            live_system.publish(
                "eldercare/v1/devices/e2e-thr/vitals",
                json.dumps(
                    {"ts": int(time.time() * 1000), "seq": next(seq), "battery": 39, "worn": True}
                ).encode(),
            )
            data = http.get("/api/v1/alerts", params={"elder_id": elder}).json()["data"]
            return [a for a in data if a["kind"] == "low_battery"] or None

        (alert,) = wait_until(low_battery, timeout=30, interval=0.5)
    assert alert["severity"] == "low" and "39" in alert["message"]


def _detection_caught_up(http: httpx.Client) -> bool:
    d = http.get("/api/v1/health").json()["detection"]
    return d["ready"] and d["readings_done"] >= d["readings_submitted"]
