"""A burst of ten times the normal rate for a minute, the population scaled down so the
test stays short but the ratio kept: every QoS 1 reading stored exactly once, an SOS
pressed mid-burst alarms once, and the time to drain the backlog is reported."""

from __future__ import annotations

import time

import psycopg
import pytest

from conftest import LiveSystem, Publisher, enrol_device, wait_until
from live_dashboard import LiveDashboard, wait_for

DEVICES = 400
NORMAL_PER_S = 40  # each device every 10 s; in the burst every second
BURST_FACTOR = 10
NORMAL_S, BURST_S, AFTER_S = 10, 60, 5


def paced(pub: Publisher, rate: float, seconds: float, seq0: int) -> int:
    """Publish at ``rate`` msgs/s for ``seconds`` (QoS 1, round-robin over the devices);
    return the next seq.  The PUBACKs are awaited at the end."""
    infos = []
    t0 = time.monotonic()
    seq = seq0
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(elapsed * rate) + 1
        while seq - seq0 < due:
            infos.append(
                pub.client.publish(
                    f"eldercare/v1/devices/b-{seq % DEVICES}/vitals",
                    f'{{"ts": {int(time.time() * 1000)}, "seq": {seq}, "hr": 72, "spo2": 97}}',
                    qos=1,
                )
            )
            seq += 1
        time.sleep(0.005)
    for info in infos:
        info.wait_for_publish(120)
    return seq


def stored(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM vitals"
            " WHERE device_id LIKE 'b-%'"
        ).fetchone()


def test_ten_times_the_rate_for_a_minute_loses_nothing_and_alarms_once(
    live_system: LiveSystem, db: psycopg.Connection, record_property: pytest.RecordProperty
) -> None:
    for d in range(DEVICES):
        enrol_device(db, f"b-{d}")
    elder = enrol_device(db, "b-sos")
    board = LiveDashboard(live_system.base_url, live_system.auth()).start()
    pub = Publisher(live_system.broker_url)
    try:
        wait_for(lambda: board.open, 30, "dashboard connected")
        seq = paced(pub, NORMAL_PER_S, NORMAL_S, 0)
        t_burst = time.monotonic()
        seq = paced(pub, NORMAL_PER_S * BURST_FACTOR, BURST_S / 2, seq)
        live_system.publisher.publish(
            "eldercare/v1/devices/b-sos/event",
            {"ts": int(time.time() * 1000), "seq": 1, "type": "sos"},
        )
        seq = paced(pub, NORMAL_PER_S * BURST_FACTOR, BURST_S / 2, seq)
        burst_end = time.monotonic()
        achieved = (seq - NORMAL_PER_S * NORMAL_S) / (burst_end - t_burst)
        wait_until(lambda: stored(live_system.database_url)[0] >= seq, timeout=120, interval=0.2)
        drained = time.monotonic() - burst_end
        record_property("recovery_s", round(drained, 2))
        record_property("burst_msgs_per_s", round(achieved, 1))
        print(
            f"\nburst: {achieved:.0f} msgs/s offered for {BURST_S} s;"
            f" backlog drained {drained:.2f} s after the burst"
        )
        seq = paced(pub, NORMAL_PER_S, AFTER_S, seq)  # back to normal
        wait_until(lambda: stored(live_system.database_url)[0] >= seq, timeout=60, interval=0.2)
        wait_for(lambda: board.sos_alerts(elder), 30, "the SOS on the dashboard")
        time.sleep(1.0)

        assert stored(live_system.database_url) == (seq, seq)
        with psycopg.connect(live_system.database_url) as c:
            sos = c.execute(
                "SELECT count FROM alerts WHERE elder_id = %s AND kind = 'sos'", (elder,)
            ).fetchall()
            quarantined = c.execute(
                "SELECT count(*) FROM quarantine WHERE device_id LIKE 'b-%'"
            ).fetchone()[0]
        assert sos == [(1,)]
        assert len(board.sos_alerts(elder)) == 1
        assert quarantined == 0
    finally:
        pub.close()
        board.stop()
