"""SIGKILL of the ingest (and its detection process) mid-stream with an SOS in flight
and another pressed while it is down: every reading stored once, each SOS alarms once,
and the time to recover is reported."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import (
    Publisher,
    eldercare_env,
    enrol_device,
    start_eldercare,
    stop_process,
    wait_until,
)
from eldercare.private_broker import PrivateBroker

DEVICES = 200  # 30 readings each: every device within a real watch's rate
TOTAL = 6000


def stream(broker_url: str, total: int) -> None:
    pub = Publisher(broker_url)
    ms = int(time.time() * 1000) - total
    infos = []
    for i in range(total):
        infos.append(
            pub.client.publish(
                f"eldercare/v1/devices/k-{i % DEVICES}/vitals",
                f'{{"ts": {ms + i}, "seq": {i}, "hr": 70}}',
                qos=1,
            )
        )
        if i % 500 == 0:
            time.sleep(0.02)
    for info in infos:
        info.wait_for_publish(60)
    pub.close()


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM vitals"
            " WHERE device_id LIKE 'k-%'"
        ).fetchone()


def sos_counts(url: str, elder_id: int) -> list[int]:
    with psycopg.connect(url) as c:
        return [
            r[0]
            for r in c.execute(
                "SELECT count FROM alerts WHERE elder_id = %s AND kind = 'sos'", (elder_id,)
            )
        ]


def test_sigkill_with_sos_in_flight_loses_and_duplicates_no_reading_and_no_alarm(
    database_url: str,
    own_broker: PrivateBroker,
    db: psycopg.Connection,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    for d in range(DEVICES):
        enrol_device(db, f"k-{d}")
    in_flight, while_down = enrol_device(db, "k-sos-a"), enrol_device(db, "k-sos-b")
    env = eldercare_env(database_url, own_broker.url)  # one client id: one broker session
    first = start_eldercare(["ingest"], env, tmp_path / "ingest1.log")
    wait_until(lambda: "ingest running" in (tmp_path / "ingest1.log").read_text(), timeout=30)
    sender = threading.Thread(target=stream, args=(own_broker.url, TOTAL))
    sender.start()
    pub = Publisher(own_broker.url)
    try:
        wait_until(lambda: counts(database_url)[0] >= 1500, timeout=60)
        now = int(time.time() * 1000)
        pub.publish("eldercare/v1/devices/k-sos-a/event", {"ts": now, "seq": 1, "type": "sos"})
        os.killpg(first.pid, signal.SIGKILL)  # ingest and detection, no goodbye
        first.wait()
        assert counts(database_url)[0] < TOTAL, "the kill must land mid-stream"
        pub.publish("eldercare/v1/devices/k-sos-b/event", {"ts": now + 5, "seq": 1, "type": "sos"})
        sender.join(120)

        restarted = time.monotonic()
        second = start_eldercare(["ingest"], env, tmp_path / "ingest2.log")
        try:
            wait_until(
                lambda: (
                    counts(database_url)[0] >= TOTAL
                    and sos_counts(database_url, in_flight)
                    and sos_counts(database_url, while_down)
                ),
                timeout=120,
                interval=0.2,
            )
            recovery = time.monotonic() - restarted
            record_property("recovery_s", round(recovery, 2))
            print(
                f"\ningest SIGKILL: all readings and both SOS alarms {recovery:.2f} s after restart"
            )
            time.sleep(2.0)  # anything redelivered or re-judged late would show now
            assert counts(database_url) == (TOTAL, TOTAL)
            assert sos_counts(database_url, in_flight) == [1]
            assert sos_counts(database_url, while_down) == [1]
            with psycopg.connect(database_url) as c:
                events = c.execute(
                    "SELECT count(*) FROM device_events WHERE device_id LIKE 'k-sos-%'"
                ).fetchone()[0]
            assert events == 2
        finally:
            stop_process(second)
    finally:
        pub.close()
