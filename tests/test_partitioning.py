"""The pure parts of the partitioned deployment: routing, the wire, live payloads."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from cluster import envelope, live_feed
from cluster.partitioning import parse_partitions, partition_of, spread
from cluster.publisher import partition_for_topic


def test_a_device_lands_in_the_same_partition_in_every_process_and_release() -> None:
    # Fixed values: a bridge and the workers must agree, whatever Python runs them.
    assert [partition_of(d, 12) for d in ("w0001", "elder-42", "xb-7")] == [10, 1, 5]


def test_devices_spread_evenly_over_partitions() -> None:
    counts = Counter(partition_of(f"w{i:05d}", 12) for i in range(12_000))
    assert set(counts) == set(range(12))
    assert max(counts.values()) < 1.15 * min(counts.values())


def test_a_topic_naming_no_device_is_still_routed_to_be_quarantined() -> None:
    assert partition_for_topic("eldercare/v1/devices/w0001/vitals", 12) == 10
    assert 0 <= partition_for_topic("rubbish/topic", 12) < 12


def test_partition_lists_are_read_and_bad_ones_explained() -> None:
    assert parse_partitions("0-2,7", 12) == [0, 1, 2, 7]
    assert parse_partitions("all", 3) == [0, 1, 2]
    assert parse_partitions("", 3) == []
    with pytest.raises(ValueError, match="outside 0-11"):
        parse_partitions("10-12", 12)
    with pytest.raises(ValueError, match="not a partition"):
        parse_partitions("a-b", 12)


def test_home_partitions_of_workers_cover_every_partition_once() -> None:
    homes = [p for w in range(3) for p in spread(w, 3, 8)]
    assert sorted(homes) == list(range(8))


def test_raw_messages_cross_rabbitmq_unchanged() -> None:
    t = datetime(2026, 12, 4, 7, 0, 0, 123456, tzinfo=UTC)
    raw = [("eldercare/v1/devices/a/vitals", b'{"seq":1}', t), ("x", b"\xff\x00", t)]
    got = envelope.unpack(envelope.pack(raw))
    assert [(m.topic, m.payload, m.received_at) for m in got] == raw


def test_live_updates_are_split_under_the_notify_limit_and_come_back_whole() -> None:
    t = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    updates = {
        e: {"lat": 34.8 + e / 1e5, "lon": 110.4, "pos_ts": t, "src": "gps"} for e in range(600)
    }
    payloads = live_feed.encode(updates)
    assert len(payloads) > 1 and all(len(p.encode()) <= live_feed.PAYLOAD_MAX for p in payloads)
    merged: dict = {}
    for p in payloads:
        merged.update(live_feed.decode(p))
    assert merged == updates
