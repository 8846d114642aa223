"""Flood control: one device's flood is refused, counted and kept; the others are untouched."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from conftest import Publisher, enrol_device, test_settings, wait_until
from ingest.flood import FloodGate, Refused, quarantine_rows
from ingest.service import IngestService

T = "eldercare/v1/devices/{}/{}"
RATE, BURST = 5.0, 50


# --- the pure gate -------------------------------------------------------------


def test_a_device_gets_its_burst_then_its_sustained_rate() -> None:
    gate = FloodGate(rate=RATE, burst=BURST)
    assert all(gate.admit("w1", 0.0) for _ in range(BURST))
    assert not gate.admit("w1", 0.0)  # burst spent, no time passed
    # Then a message every 1/64 s (exact in binary) for one second: 5 of the 64 pass.
    admitted = sum(gate.admit("w1", i / 64) for i in range(1, 65))
    assert admitted == 5


def test_one_device_flooding_costs_the_others_nothing() -> None:
    gate = FloodGate(rate=RATE, burst=BURST)
    for _ in range(1000):
        gate.admit("flooder", 1.0)
    assert all(gate.admit(f"w{i}", 1.0) for i in range(20))


def test_an_idle_device_refills_to_the_burst_and_no_further() -> None:
    gate = FloodGate(rate=RATE, burst=BURST)
    for _ in range(BURST):
        gate.admit("w1", 0.0)
    admitted = sum(gate.admit("w1", 3600.0) for _ in range(BURST + 10))
    assert admitted == BURST


def test_a_clock_going_backwards_gives_no_tokens() -> None:
    gate = FloodGate(rate=RATE, burst=1)
    assert gate.admit("w1", 100.0)
    assert not gate.admit("w1", 50.0)
    assert not gate.admit("w1", 100.1)  # 0.1 s after the last admit: half a token


def test_refusals_collapse_to_one_row_per_device_and_second_with_their_count() -> None:
    t0 = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
    refused = [
        Refused(t0 + timedelta(milliseconds=10 * i), T.format("w1", "vitals"), "w1", b"x" * 10)
        for i in range(150)  # 1.5 s: two seconds of arrival
    ] + [Refused(t0, T.format("w2", "vitals"), "w2", b"y")]
    rows = quarantine_rows(refused, RATE, BURST, raw_limit=4)
    by_device = sorted((r[2], r[4]) for r in rows)
    assert [d for d, _ in by_device] == ["w1", "w1", "w2"]
    counts = sorted(int(re.match(r"(\d+) message", detail).group(1)) for _, detail in by_device)
    assert counts == [1, 50, 100]
    assert all(r[3] == "rate_limited" for r in rows)
    w1_first = next(r for r in rows if r[2] == "w1" and r[0] == t0)
    assert w1_first[6] == b"xxxx" and w1_first[7] == 10  # truncated sample, real size


# --- through the real broker ---------------------------------------------------


@pytest.fixture
def ingest(database_url: str, broker_url: str, db: psycopg.Connection) -> Iterator[IngestService]:
    svc = IngestService(
        test_settings(flood_rate_per_s=RATE, flood_burst=BURST), database_url, broker_url
    )
    svc.start()
    yield svc
    svc.stop()


def _count(db: psycopg.Connection, sql: str, *args: object) -> int:
    db.commit()
    return db.execute(sql, args).fetchone()[0]


def test_a_flooding_device_is_limited_while_twenty_others_are_stored_promptly(
    ingest: IngestService, broker_url: str, db: psycopg.Connection
) -> None:
    enrol_device(db, "flooder")
    others = [f"calm-{i:02d}" for i in range(20)]
    for d in others:
        enrol_device(db, d)
    flood_n, rounds = 2000, 10
    flooder, calm = Publisher(broker_url), Publisher(broker_url)
    base_ms = int(time.time() * 1000)

    def report_normally() -> None:
        for seq in range(rounds):
            for d in others:
                calm.publish(T.format(d, "vitals"), {"ts": base_ms + seq, "seq": seq, "hr": 70})
            time.sleep(0.2)

    try:
        started = time.monotonic()
        reporter = threading.Thread(target=report_normally)
        reporter.start()
        infos = [
            flooder.publish(
                T.format("flooder", "vitals"),
                {"ts": base_ms + i, "seq": i, "hr": 80},
                wait=False,
            )
            for i in range(flood_n)
        ]
        for info in infos:
            info.wait_for_publish(30)
        reporter.join(60)
        sent_for = time.monotonic() - started

        # Every calm reading is stored, none quarantined.
        wait_until(
            lambda: (
                _count(db, "SELECT count(*) FROM vitals WHERE device_id LIKE 'calm-%%'")
                == len(others) * rounds
            ),
            timeout=30,
        )
        assert _count(db, "SELECT count(*) FROM quarantine WHERE device_id LIKE 'calm-%%'") == 0

        # Every flood message is either stored or counted as refused: none lost.
        def accounted() -> bool:
            stored = _count(db, "SELECT count(*) FROM vitals WHERE device_id = 'flooder'")
            return stored + ingest.stats.quarantined["rate_limited"] == flood_n

        wait_until(accounted, timeout=60)
    finally:
        flooder.close()
        calm.close()

    stored = _count(db, "SELECT count(*) FROM vitals WHERE device_id = 'flooder'")
    refused = ingest.stats.quarantined["rate_limited"]
    assert BURST <= stored <= BURST + RATE * (sent_for + 5)
    rows = db.execute(
        "SELECT detail FROM quarantine WHERE reason = 'rate_limited' AND device_id = 'flooder'"
    ).fetchall()
    in_rows = sum(int(re.match(r"(\d+) message", d).group(1)) for (d,) in rows)
    assert in_rows == refused  # the rows say how many they stand for
    assert 0 < len(rows) < refused / 10  # collapsed: a few rows, not one per refusal
    assert ingest.connected

    # Its wearer presses SOS in the middle of the runaway: the event has its own allowance.
    flooder = Publisher(broker_url)
    try:
        for i in range(200):
            flooder.publish(
                T.format("flooder", "vitals"), {"ts": base_ms + i, "seq": 10_000 + i}, wait=False
            )
        flooder.publish(
            T.format("flooder", "event"), {"ts": int(time.time() * 1000), "seq": 1, "type": "sos"}
        )
    finally:
        flooder.close()
    wait_until(
        lambda: _count(db, "SELECT count(*) FROM device_events WHERE device_id = 'flooder'") == 1,
        timeout=30,
    )
