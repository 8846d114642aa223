"""Ingest through a real broker into a real database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from conftest import Publisher, enrol_device, test_settings, wait_until
from ingest.service import IngestService

T = "eldercare/v1/devices/{}/{}"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def ingest(database_url: str, broker_url: str, db: psycopg.Connection) -> Iterator[IngestService]:
    svc = IngestService(test_settings(), database_url, broker_url)
    svc.start()
    yield svc
    svc.stop()


def count(db: psycopg.Connection, table: str, where: str = "true") -> int:
    db.commit()  # see other sessions' commits
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def test_published_readings_become_rows_and_latest_state(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    elder = enrol_device(db, "it-w1")
    ms = now_ms()
    for i in range(20):
        publisher.publish(
            T.format("it-w1", "vitals"), {"ts": ms - (20 - i) * 1000, "seq": i, "hr": 60 + i}
        )
    publisher.publish(
        T.format("it-w1", "location"),
        {"ts": ms, "seq": 100, "lat": 34.8671, "lon": 110.4472, "acc": 6, "src": "gps"},
    )
    publisher.publish(T.format("it-w1", "event"), {"ts": ms, "seq": 101, "type": "sos"})
    wait_until(
        lambda: (
            count(db, "vitals") == 20
            and count(db, "device_events") == 1
            and count(db, "positions") == 1
        )
    )
    row = db.execute(
        "SELECT hr, lat, event_type FROM latest_state WHERE elder_id = %s", (elder,)
    ).fetchone()
    assert row == (79.0, 34.8671, "sos")
    assert db.execute("SELECT DISTINCT elder_id FROM vitals").fetchall() == [(elder,)]


def test_a_repeated_device_and_seq_is_stored_once(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    enrol_device(db, "it-dup")
    sample = {"ts": now_ms(), "seq": 42, "hr": 71}
    publisher.publish(T.format("it-dup", "vitals"), sample)
    wait_until(lambda: count(db, "vitals") == 1)
    for _ in range(3):  # re-sent after the first was committed, and twice in one batch
        publisher.publish(T.format("it-dup", "vitals"), sample, wait=False)
    publisher.publish(T.format("it-dup", "vitals"), [sample, sample, {**sample, "seq": 43}])
    wait_until(lambda: count(db, "vitals") == 2)
    wait_until(lambda: ingest.stats.duplicates >= 5)
    assert count(db, "vitals") == 2


def test_bad_input_is_quarantined_with_a_reason_and_ingest_goes_on(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    enrol_device(db, "it-bad")
    ms = now_ms()
    publisher.publish(T.format("it-bad", "vitals"), b"{oops")
    publisher.publish(T.format("it-bad", "vitals"), {"ts": ms, "seq": 1, "spo2": 140})
    publisher.publish(
        T.format("it-bad", "vitals"), {"ts": ms - 5 * 365 * 86400_000, "seq": 2, "hr": 70}
    )
    publisher.publish(T.format("stranger", "vitals"), {"ts": ms, "seq": 1, "hr": 70})
    publisher.publish(
        T.format("it-bad", "vitals"), b"[" + b'{"ts": 1, "seq": 1, "hr": 70},' * 20000 + b"{}]"
    )
    publisher.publish("eldercare/v1/devices/it-bad/vitals/deeper", b"{}")
    publisher.publish(
        T.format("it-bad", "vitals"), {"ts": ms, "seq": 3, "hr": 66}
    )  # good one after
    mine = "(topic LIKE '%/it-bad/%' OR device_id = 'stranger')"  # other runs' retained messages
    wait_until(lambda: count(db, "quarantine", mine) == 6 and count(db, "vitals") == 1)
    reasons = sorted(r for (r,) in db.execute(f"SELECT reason FROM quarantine WHERE {mine}"))
    assert reasons == [
        "bad_topic",
        "clock_skew",
        "impossible_value",
        "malformed_json",
        "oversized",
        "unknown_device",
    ]
    raw, size = db.execute(
        "SELECT raw, raw_size FROM quarantine WHERE reason = 'oversized'"
    ).fetchone()
    assert size > 500_000 and len(raw) == test_settings().quarantine_raw_bytes
    assert ingest.stats.quarantined["unknown_device"] >= 1  # (+ other runs' retained messages)


def test_buffered_array_upload_is_stored_sample_by_sample(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    enrol_device(db, "it-arr")
    ms = now_ms() - 3600_000
    samples = [{"ts": ms + i * 60_000, "seq": i, "hr": 70, "steps": i * 10} for i in range(50)]
    samples[7]["hr"] = 500  # one broken sample in the middle
    publisher.publish(T.format("it-arr", "vitals"), samples)
    wait_until(
        lambda: count(db, "vitals") == 49 and count(db, "quarantine", "device_id = 'it-arr'") == 1
    )
    assert db.execute(
        "SELECT item_index FROM quarantine WHERE device_id = 'it-arr'"
    ).fetchone() == (7,)


def test_device_status_updates_device_and_map_state(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    elder = enrol_device(db, "it-st")
    publisher.publish(T.format("it-st", "status"), b"offline", retain=True)
    wait_until(
        lambda: (
            db.execute("SELECT online FROM devices WHERE id = 'it-st'").fetchone() == (False,)
            or db.commit()
        )
    )
    assert db.execute(
        "SELECT online FROM latest_state WHERE elder_id = %s", (elder,)
    ).fetchone() == (False,)
    publisher.publish(T.format("it-st", "status"), b"", retain=True)  # clearing it is not an error
    time.sleep(0.3)
    assert count(db, "quarantine", "device_id = 'it-st'") == 0


def test_swapping_a_device_moves_its_new_readings_to_the_new_wearer(
    database_url: str, broker_url: str, publisher: Publisher, db: psycopg.Connection
) -> None:
    first = enrol_device(db, "it-swap", name="甲")
    second = db.execute("INSERT INTO elders (name) VALUES ('乙') RETURNING id").fetchone()[0]
    db.commit()
    svc = IngestService(test_settings(), database_url, broker_url)
    svc.directory.refresh_s = 0.0  # see the swap at once
    svc.start()
    try:
        publisher.publish(T.format("it-swap", "vitals"), {"ts": now_ms(), "seq": 1, "hr": 70})
        wait_until(lambda: count(db, "vitals") == 1)
        db.execute("UPDATE devices SET elder_id = %s WHERE id = 'it-swap'", (second,))
        db.commit()
        publisher.publish(T.format("it-swap", "vitals"), {"ts": now_ms(), "seq": 2, "hr": 71})
        wait_until(lambda: count(db, "vitals") == 2)
    finally:
        svc.stop()
    assert db.execute("SELECT seq, elder_id FROM vitals ORDER BY seq").fetchall() == [
        (1, first),
        (2, second),
    ]


def test_messages_arrive_in_time_order_for_the_map(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    """A late fix (older ts) after a newer one must not move the elder's dot back."""
    elder = enrol_device(db, "it-ord")
    ms = now_ms()
    publisher.publish(
        T.format("it-ord", "location"), {"ts": ms, "seq": 2, "lat": 34.87, "lon": 110.45, "acc": 5}
    )
    publisher.publish(
        T.format("it-ord", "location"),
        {"ts": ms - 60_000, "seq": 1, "lat": 34.80, "lon": 110.40, "acc": 5},
    )
    wait_until(lambda: count(db, "positions") == 2)
    assert db.execute("SELECT lat FROM latest_state WHERE elder_id = %s", (elder,)).fetchone() == (
        34.87,
    )


def test_ingest_stats_count_what_happened(
    ingest: IngestService, publisher: Publisher, db: psycopg.Connection
) -> None:
    enrol_device(db, "it-stats")
    publisher.publish(
        T.format("it-stats", "vitals"), json.dumps({"ts": now_ms(), "seq": 1, "hr": 70})
    )
    wait_until(lambda: ingest.stats.samples["vitals"] >= 1)
    s = ingest.stats.as_dict()
    assert s["messages"] >= 1 and s["batches"] >= 1 and s["broker_connects"] == 1
    assert datetime.now(UTC)  # stats are plain data, JSON-able
    json.dumps(s)
