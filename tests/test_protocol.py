"""The device protocol: what is accepted, and the reason for everything that is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from protocol.decode import Limits, Reason, decode, parse_ts
from protocol.messages import Event, Position, Status, Vitals
from protocol.topics import parse_topic

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)


def run(channel: str, payload: object, **kw: object):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(channel, raw, device_id="w1", received_at=NOW, **kw)  # type: ignore[arg-type]


def reasons(d) -> list[str]:
    return [str(r.reason) for r in d.rejects]


def test_vitals_object_becomes_a_typed_reading_in_utc() -> None:
    d = run(
        "vitals",
        {
            "ts": "2026-11-28T15:59:30+08:00",
            "seq": 3,
            "hr": 72,
            "spo2": 97,
            "sbp": 128,
            "dbp": 82,
            "temp": 36.6,
            "rr": 16,
            "steps": 1200,
            "battery": 81,
            "worn": True,
        },
    )
    assert d.rejects == []
    (v,) = d.readings
    assert isinstance(v, Vitals)
    assert v.ts == datetime(2026, 11, 28, 7, 59, 30, tzinfo=UTC)
    assert (v.hr, v.spo2, v.sbp, v.dbp, v.steps, v.worn) == (72, 97, 128, 82, 1200, True)


def test_epoch_milliseconds_and_rfc3339_mean_the_same_instant() -> None:
    assert parse_ts(MS) == parse_ts("2026-11-28T16:00:00+08:00") == NOW
    assert parse_ts("2026-11-28T08:00:00Z") == NOW


def test_location_and_event_payloads() -> None:
    (p,) = run(
        "location", {"ts": MS, "seq": 1, "lat": 34.867, "lon": 110.447, "acc": 8, "src": "wifi"}
    ).readings
    assert isinstance(p, Position) and p.src == "wifi"
    burst = {"hz": 50, "g": [[0.0, 0.1, 1.0]] * 100}
    (e,) = run("event", {"ts": MS, "seq": 2, "type": "fall", "accel": burst}).readings
    assert isinstance(e, Event) and e.accel is not None and len(e.accel.g) == 100
    (s,) = run("event", {"ts": MS, "seq": 3, "type": "service", "kind": "meal"}).readings
    assert isinstance(s, Event) and s.kind == "meal"


def test_array_upload_keeps_good_samples_and_quarantines_each_bad_one() -> None:
    d = run(
        "vitals",
        [
            {"ts": MS - 60_000, "seq": 1, "hr": 70},
            {"ts": MS - 50_000, "seq": 2, "hr": 999},  # impossible
            {"ts": MS - 40_000, "seq": 3},  # no value at all
            "nonsense",
            {"ts": MS - 30_000, "seq": 5, "spo2": 96},
        ],
    )
    assert [r.seq for r in d.readings] == [1, 5]
    assert [(str(r.reason), r.index) for r in d.rejects] == [
        ("impossible_value", 1),
        ("empty", 2),
        ("invalid_payload", 3),
    ]
    assert "hr" in d.rejects[0].detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", Reason.MALFORMED_JSON),
        (b"", Reason.MALFORMED_JSON),
        (b"\xff\xfe", Reason.MALFORMED_JSON),
        ({"seq": 1, "hr": 70}, Reason.INVALID_PAYLOAD),  # no ts
        ({"ts": MS, "hr": 70}, Reason.INVALID_PAYLOAD),  # no seq
        ({"ts": MS, "seq": "7", "hr": 70}, Reason.INVALID_PAYLOAD),
        ({"ts": MS, "seq": 1, "hr": "fast"}, Reason.INVALID_PAYLOAD),
        ({"ts": "yesterday", "seq": 1, "hr": 70}, Reason.INVALID_PAYLOAD),
        ({"ts": "2026-11-28T08:00:00", "seq": 1, "hr": 70}, Reason.INVALID_PAYLOAD),  # no offset
        ({"ts": MS, "seq": -1, "hr": 70}, Reason.IMPOSSIBLE_VALUE),
        ({"ts": MS, "seq": 1, "spo2": 130}, Reason.IMPOSSIBLE_VALUE),
        ({"ts": MS, "seq": 1, "temp": 12}, Reason.IMPOSSIBLE_VALUE),
        ({"ts": MS, "seq": 1, "sbp": 80, "dbp": 120}, Reason.IMPOSSIBLE_VALUE),
        ({"ts": MS, "seq": 1}, Reason.EMPTY),
        ([], Reason.EMPTY),
        ({"ts": MS - 10 * 365 * 86400_000, "seq": 1, "hr": 70}, Reason.CLOCK_SKEW),  # years off
        ({"ts": MS + 3600_000, "seq": 1, "hr": 70}, Reason.CLOCK_SKEW),  # an hour ahead
        (42, Reason.INVALID_PAYLOAD),
    ],
)
def test_bad_vitals_are_rejected_with_a_reason(payload: object, reason: Reason) -> None:
    d = run("vitals", payload)
    assert d.readings == []
    assert reasons(d) == [str(reason)]
    assert d.rejects[0].detail


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ("location", {"ts": MS, "seq": 1, "lat": 134.0, "lon": 110.4, "acc": 5}),
        ("location", {"ts": MS, "seq": 1, "lat": 34.8, "lon": 110.4, "acc": -5}),
        ("location", {"ts": MS, "seq": 1, "lat": 34.8, "lon": 110.4, "acc": 5, "src": "psychic"}),
        ("event", {"ts": MS, "seq": 1, "type": "party"}),
        ("event", {"ts": MS, "seq": 1, "type": "fall", "accel": {"hz": 50, "g": [[1, 2]]}}),
        ("event", {"ts": MS, "seq": 1, "type": "service", "kind": "massage"}),
    ],
)
def test_bad_location_and_event_payloads_are_rejected(channel: str, payload: object) -> None:
    d = run(channel, payload)
    assert d.readings == [] and len(d.rejects) == 1


def test_oversized_payload_is_rejected_before_parsing() -> None:
    big = json.dumps([{"ts": MS, "seq": i, "hr": 70} for i in range(20_000)]).encode()
    d = decode(
        "vitals", big, device_id="w1", received_at=NOW, limits=Limits(max_payload_bytes=1024)
    )
    assert reasons(d) == ["oversized"]


def test_deeply_nested_json_is_rejected_not_a_crash() -> None:
    d = run("vitals", b"[" * 100_000 + b"]" * 100_000)
    assert d.readings == [] and len(d.rejects) >= 1


def test_buffered_upload_from_yesterday_is_accepted_within_the_backfill_window() -> None:
    old = int((NOW - timedelta(hours=30)).timestamp() * 1000)
    d = run("vitals", [{"ts": old + i * 60_000, "seq": i, "hr": 70} for i in range(50)])
    assert len(d.readings) == 50 and d.rejects == []


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b"online", True),
        (b"offline", False),
        (b'"offline"', False),
        (b'{"state": "online", "ts": 1764316800000}', True),
    ],
)
def test_status_payloads(payload: bytes, online: bool) -> None:
    (s,) = decode("status", payload, device_id="w1", received_at=NOW).readings
    assert isinstance(s, Status) and s.online is online


def test_bad_status_is_rejected() -> None:
    assert reasons(run("status", b"sleepy")) == ["malformed_json"]
    assert reasons(run("status", b'{"state": "maybe"}')) == ["invalid_payload"]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("eldercare/v1/devices/xb-w0001/vitals", ("xb-w0001", "vitals")),
        ("eldercare/v1/devices/xb-w0001/status", ("xb-w0001", "status")),
        ("eldercare/v1/devices/xb-w0001/cmd", None),  # downlink, not input
        ("eldercare/v1/devices/bad.id/vitals", None),
        ("eldercare/v1/devices/" + "a" * 65 + "/vitals", None),
        ("eldercare/v1/devices/x/vitals/extra", None),
        ("eldercare/v2/devices/x/vitals", None),
    ],
)
def test_topics(topic: str, expected: tuple[str, str] | None) -> None:
    assert parse_topic(topic) == expected
