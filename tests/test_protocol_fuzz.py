"""Hostile payloads: whatever a device (or an attacker with its credentials) sends, the
parser answers with readings and reasoned rejects — never an exception, never a sample
that vanishes without a trace.

The accounting property is the one staff rely on when a family says "the watch sent
it": every element of an array is either a reading or a reject naming its index.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.decode import Limits, Reason, decode

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
CHANNELS = ("vitals", "location", "event", "status")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Timestamps near now, far away, and malformed: the window check must judge them all.
timestamps = (
    st.integers(min_value=-(2**40), max_value=2**45)
    | st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda t: t.isoformat())
    | st.timedeltas(min_value=timedelta(days=-5), max_value=timedelta(minutes=10)).map(
        lambda d: (NOW + d).isoformat()
    )
    | st.text(max_size=25)
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-1000, 1000), st.text(max_size=5)
)
vitals_like = st.fixed_dictionaries(
    {"ts": timestamps},
    optional={
        "seq": st.integers(-5, 2**40),
        "hr": numbers,
        "spo2": numbers,
        "sbp": numbers,
        "temp": numbers,
        "steps": numbers,
        "battery": numbers,
        "worn": st.booleans() | st.text(max_size=3),
    },
)
location_like = st.fixed_dictionaries(
    {"ts": timestamps, "lat": numbers, "lon": numbers},
    optional={"acc": numbers, "src": st.sampled_from(["gps", "wifi", "lbs", "moon"])},
)
event_like = st.fixed_dictionaries(
    {"ts": timestamps, "type": st.sampled_from(["sos", "fall", "cancel", "service", "boom"])},
    optional={"kind": st.text(max_size=12), "seq": st.integers(-3, 100)},
)
element = vitals_like | location_like | event_like | json_values


def _never_raises_and_accounts(channel: str, payload: bytes) -> None:
    out = decode(channel, payload, device_id="fuzz-1", received_at=NOW)
    assert all(isinstance(r.reason, Reason) and r.detail for r in out.rejects)
    # The one payload that is not input: an empty publish on the retained status topic
    # is how MQTT deletes the retained message.
    if not (channel == "status" and payload == b""):
        assert out.readings or out.rejects, "a payload must leave a trace"
    for reading in out.readings:
        assert reading.device_id == "fuzz-1"
        ts = getattr(reading, "ts", NOW)
        assert NOW - timedelta(hours=72) <= ts <= NOW + timedelta(minutes=5)


@FUZZ
@given(channel=st.sampled_from(CHANNELS), payload=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_parser(channel: str, payload: bytes) -> None:
    _never_raises_and_accounts(channel, payload)


@FUZZ
@given(channel=st.sampled_from(CHANNELS), value=json_values)
def test_arbitrary_json_never_crashes_the_parser(channel: str, value: object) -> None:
    _never_raises_and_accounts(channel, json.dumps(value).encode())


@FUZZ
@given(
    channel=st.sampled_from(("vitals", "location", "event")),
    elements=st.lists(element, min_size=1, max_size=12),
)
def test_every_element_of_an_upload_is_stored_or_quarantined_by_index(
    channel: str, elements: list[object]
) -> None:
    out = decode(channel, json.dumps(elements).encode(), device_id="fuzz-1", received_at=NOW)
    rejected = {r.index for r in out.rejects}
    assert None not in rejected, "an element's reject must name its index"
    assert len(out.readings) + len(rejected) == len(elements)
    assert len(out.rejects) == len(rejected), "one reject per bad element"


@FUZZ
@given(depth=st.integers(min_value=50, max_value=5000), channel=st.sampled_from(CHANNELS))
def test_deep_nesting_is_rejected_not_a_crash(depth: int, channel: str) -> None:
    for payload in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        _never_raises_and_accounts(channel, payload)


def test_oversized_payload_and_array_are_refused_with_their_sizes() -> None:
    limits = Limits(max_payload_bytes=1000, max_array=5)
    big = decode("vitals", b" " * 1001, device_id="d", received_at=NOW, limits=limits)
    assert [(r.reason, r.detail) for r in big.rejects] == [
        (Reason.OVERSIZED, "1001 bytes > limit 1000")
    ]
    many = json.dumps([{"ts": NOW.isoformat(), "seq": i, "hr": 70} for i in range(6)]).encode()
    out = decode("vitals", many, device_id="d", received_at=NOW, limits=limits)
    assert not out.readings
    assert [r.reason for r in out.rejects] == [Reason.OVERSIZED]
    assert "6 elements" in out.rejects[0].detail


@FUZZ
@given(
    text=st.sampled_from(
        [
            "'; DROP TABLE vitals; --",
            "<script>alert(1)</script>",
            "\u0000\ud7ff\ufffe",
            "Robert'); DELETE FROM elders;--",
        ]
    ),
    channel=st.sampled_from(("event", "location", "vitals")),
)
def test_injection_strings_are_data_not_code(text: str, channel: str) -> None:
    body = {"ts": NOW.isoformat(), "type": text, "kind": text, "src": text, "hr": text}
    out = decode(channel, json.dumps(body).encode(), device_id="fuzz-1", received_at=NOW)
    # Whatever it is judged to be, the reject's detail is bounded and the parser lives.
    assert out.rejects and all(len(r.detail) <= 320 for r in out.rejects)
