"""A device back in coverage uploads a whole day it buffered, at once: every reading is
stored exactly once (also when the device sends it all again), what the old readings
reveal is not raised now (the lateness policy), but the SOS pressed in the dead zone is."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from conftest import LiveSystem, enrol_device, wait_until
from live_dashboard import LiveDashboard, wait_for

INTERVAL_S = 60  # a watch's vital-sign interval (design brief)
DAY = 86_400 // INTERVAL_S  # 1,440 samples
PER_MESSAGE = 360  # four messages, each well under the payload limit
DEVICE = "buf-1"


def the_day(now_ms: int) -> list[dict[str, object]]:
    """A day of samples ending a minute ago; 10 to 11 h ago the elder was febrile with a
    fast resting pulse and low SpO2 -- alarming then, stale now."""
    out: list[dict[str, object]] = []
    for i in range(DAY):
        ts = now_ms - (DAY - i) * INTERVAL_S * 1000
        hours_ago = (now_ms - ts) / 3_600_000
        sick = 10 <= hours_ago <= 11
        out.append(
            {
                "ts": ts,
                "seq": i,
                "hr": 142 if sick else 68 + i % 5,
                "spo2": 84 if sick else 97,
                "temp": 39.2 if sick else 36.6,
                "steps": 1000,
                "battery": 90 - i / 100,
                "worn": True,
            }
        )
    return out


def alerts_of(url: str, elder_id: int) -> list[tuple[str, int, dict]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT kind, count, detail FROM alerts WHERE elder_id = %s ORDER BY id", (elder_id,)
        ).fetchall()


def vitals_of(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT count(*), count(DISTINCT seq) FROM vitals WHERE device_id = %s", (DEVICE,)
        ).fetchone()


def duplicates(live: LiveSystem) -> int:
    with live.http() as c:
        return int(c.get("/api/v1/health").json()["ingest"]["duplicates"])


def detection_caught_up(live: LiveSystem, at_least: int) -> bool:
    with live.http() as c:
        d = c.get("/api/v1/health").json()["detection"]
    return d["readings_submitted"] >= at_least and d["readings_done"] >= d["readings_submitted"]


def test_a_day_of_buffered_readings_is_stored_once_and_only_the_sos_alarms(
    live_system: LiveSystem, db: psycopg.Connection, record_property: pytest.RecordProperty
) -> None:
    elder = enrol_device(db, DEVICE)
    board = LiveDashboard(live_system.base_url, live_system.auth()).start()
    try:
        wait_for(lambda: board.open, 30, "dashboard connected")
        now_ms = int(time.time() * 1000)
        day = the_day(now_ms)
        sos_ms = now_ms - 3 * 3_600_000
        messages = [
            (f"eldercare/v1/devices/{DEVICE}/vitals", json.dumps(day[i : i + PER_MESSAGE]))
            for i in range(0, DAY, PER_MESSAGE)
        ] + [
            (
                f"eldercare/v1/devices/{DEVICE}/event",
                json.dumps([{"ts": sos_ms, "seq": DAY, "type": "sos"}]),
            )
        ]
        assert all(len(p) < 262_144 for _, p in messages)
        t0 = time.monotonic()
        for topic, payload in messages:
            live_system.publisher.publish(topic, payload)
        wait_until(lambda: vitals_of(live_system.database_url)[0] >= DAY, timeout=60)
        wait_for(lambda: board.sos_alerts(elder), 60, "the buffered SOS on the dashboard")
        recovery = time.monotonic() - t0
        wait_until(lambda: detection_caught_up(live_system, DAY + 1), timeout=60)
        record_property("recovery_s", round(recovery, 2))
        print(f"\nbuffered day: stored and SOS on the dashboard {recovery:.2f} s after upload")

        # The device did not hear the acknowledgement and sends everything again.
        for topic, payload in messages:
            live_system.publisher.publish(topic, payload)
        wait_until(lambda: duplicates(live_system) >= DAY + 1, timeout=60)
        wait_until(lambda: detection_caught_up(live_system, DAY + 1), timeout=60)
        time.sleep(1.0)

        assert vitals_of(live_system.database_url) == (DAY, DAY)
        found = alerts_of(live_system.database_url, elder)
        assert [(k, n) for k, n, _ in found] == [("sos", 1)], found  # nothing stale
        assert found[0][2]["delayed_s"] >= 3 * 3600 - 60  # raised, the delay noted
        assert len(board.sos_alerts(elder)) == 1
        with psycopg.connect(live_system.database_url) as c:
            assert (
                c.execute(
                    "SELECT count(*) FROM device_events WHERE device_id = %s", (DEVICE,)
                ).fetchone()[0]
                == 1
            )
            assert (
                c.execute(
                    "SELECT count(*) FROM quarantine WHERE device_id = %s", (DEVICE,)
                ).fetchone()[0]
                == 0
            )
    finally:
        board.stop()
