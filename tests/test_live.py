"""The live WebSocket, end to end: device publish → broker → ingest → database → dashboard."""

from __future__ import annotations

import json
import time

from websockets.sync.client import connect

from conftest import LiveSystem


def enrol(live: LiveSystem, device_id: str, name: str) -> int:
    with live.http() as http:
        elder = http.post("/api/v1/elders", json={"name": name}).json()
        assert (
            http.post(
                "/api/v1/devices", json={"id": device_id, "elder_id": elder["id"]}
            ).status_code
            == 201
        )
    return int(elder["id"])


def collect(ws, until, timeout: float = 15.0) -> list[dict]:
    """Receive messages until ``until(messages)`` holds."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic()))))
        except TimeoutError:
            break
        if until(got):
            return got
    raise AssertionError(f"not seen within {timeout}s: {got[-3:]!r}")


def updates_for(messages: list[dict], elder_id: int) -> list[dict]:
    return [
        e
        for m in messages
        if m["type"] == "update"
        for e in m["elders"]
        if e["elder_id"] == elder_id
    ]


def test_a_websocket_client_sees_a_position_after_a_publish(live_system: LiveSystem) -> None:
    elder = enrol(live_system, "ws-1", "赵玉梅")
    ws_url = live_system.base_url.replace("http", "ws") + "/ws/live"
    with connect(ws_url, additional_headers=live_system.auth()) as ws:
        live_system.publish(
            "eldercare/v1/devices/ws-1/location",
            json.dumps(
                {
                    "ts": int(time.time() * 1000),
                    "seq": 1,
                    "lat": 34.8682,
                    "lon": 110.4481,
                    "acc": 7,
                    "src": "gps",
                }
            ).encode(),
        )
        msgs = collect(ws, lambda m: updates_for(m, elder))
    (update,) = updates_for(msgs, elder)
    assert (update["lat"], update["lon"], update["src"]) == (34.8682, 110.4481, "gps")
    assert update["name"] == "赵玉梅" and update["attention"] is False


def test_updates_are_coalesced_per_elder_and_carry_attention(live_system: LiveSystem) -> None:
    elder = enrol(live_system, "ws-2", "孙福成")
    ws_url = live_system.base_url.replace("http", "ws") + "/ws/live"
    ms = int(time.time() * 1000)
    with connect(ws_url, additional_headers=live_system.auth()) as ws:
        for i in range(30):  # 30 fixes within a fraction of a second
            info = live_system.publisher.publish(
                "eldercare/v1/devices/ws-2/location",
                {"ts": ms + i * 100, "seq": i, "lat": 34.86 + i * 0.0001, "lon": 110.44, "acc": 5},
                wait=False,
            )
        info.wait_for_publish(10)
        live_system.publish(
            "eldercare/v1/devices/ws-2/vitals",
            json.dumps({"ts": ms + 5000, "seq": 100, "hr": 145, "worn": True}).encode(),
        )
        msgs = collect(ws, lambda m: any(u.get("hr") == 145 for u in updates_for(m, elder)))
    mine = updates_for(msgs, elder)
    assert len(mine) < 10, "30 fixes must not become 30 messages"
    lats = [u["lat"] for u in mine if "lat" in u]
    assert abs(lats[-1] - (34.86 + 29 * 0.0001)) < 1e-9  # the newest fix wins
    assert mine[-1]["attention"] is True and "hr_high" in mine[-1]["attention_reasons"]
