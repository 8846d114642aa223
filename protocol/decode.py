"""Turn one MQTT payload into typed readings and reasoned rejects, never an exception.

An array (a device's buffered upload) is judged element by element: one bad sample
is quarantined, its neighbours are kept.

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
>>> d = decode("vitals", b'[{"ts": "2026-11-28T15:59:00+08:00", "seq": 7, "hr": 72},'
...            b' {"ts": 1, "seq": 8, "hr": 70}]', device_id="w1", received_at=now)
>>> [(r.seq, r.hr) for r in d.readings]
[(7, 72.0)]
>>> [(str(r.reason), r.index) for r in d.rejects]
[('clock_skew', 1)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from protocol.messages import (
    Event,
    EventPayload,
    LocationPayload,
    Position,
    Reading,
    Status,
    Vitals,
    VitalsPayload,
)


class Reason(StrEnum):
    """Why a payload (or one element of it) went to the quarantine."""

    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    INVALID_PAYLOAD = "invalid_payload"
    IMPOSSIBLE_VALUE = "impossible_value"
    EMPTY = "empty"
    CLOCK_SKEW = "clock_skew"
    UNKNOWN_DEVICE = "unknown_device"
    REJECTED_BY_DATABASE = "rejected_by_database"  # passed validation, refused by a constraint
    RATE_LIMITED = "rate_limited"  # over the device's message rate (ingest.flood)


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_backfill: timedelta = timedelta(hours=72)
    max_future: timedelta = timedelta(minutes=5)
    max_array: int = 10_000


@dataclass(frozen=True, slots=True)
class Reject:
    reason: Reason
    detail: str
    index: int | None = None  # position in an array payload


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


_PAYLOAD_TYPES: dict[str, type] = {
    "vitals": VitalsPayload,
    "location": LocationPayload,
    "event": EventPayload,
}
_FAST: dict[str, msgspec.json.Decoder[Any]] = {
    ch: msgspec.json.Decoder(t | list[t])
    for ch, t in _PAYLOAD_TYPES.items()  # type: ignore[valid-type]
}
_GENERIC = msgspec.json.Decoder()
_BOUND = re.compile(r"Expected `[^`]+` (>=|<=|>|<) ")
_LENGTH = re.compile(r"length (>=|<=)")
_EPOCH_MS_MIN, _EPOCH_MS_MAX = 0, 253402300799999  # datetime's own range


def decode(
    channel: str,
    payload: bytes,
    *,
    device_id: str,
    received_at: datetime,
    limits: Limits = Limits(),
) -> Decoded:
    out = Decoded()
    if len(payload) > limits.max_payload_bytes:
        out.rejects.append(
            Reject(Reason.OVERSIZED, f"{len(payload)} bytes > limit {limits.max_payload_bytes}")
        )
        return out
    if channel == "status":
        _decode_status(payload, device_id, received_at, out)
        return out
    ptype = _PAYLOAD_TYPES.get(channel)
    if ptype is None:
        out.rejects.append(Reject(Reason.BAD_TOPIC, f"no such channel {channel!r}"))
        return out

    try:  # fast path: the whole payload is well-formed
        parsed = _FAST[channel].decode(payload)
        items = parsed if isinstance(parsed, list) else [parsed]
        indexed = parsed if isinstance(parsed, list) else None
        if indexed is not None and len(items) > limits.max_array:
            out.rejects.append(
                Reject(Reason.OVERSIZED, f"{len(items)} elements > limit {limits.max_array}")
            )
            return out
        if indexed is not None and not items:
            out.rejects.append(Reject(Reason.EMPTY, "empty array"))
        window = _Window(received_at, limits)
        for i, item in enumerate(items):
            _accept(channel, item, i if indexed is not None else None, device_id, window, out)
        return out
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        out.rejects.append(Reject(Reason.MALFORMED_JSON, _short(str(exc))))
        return out
    except RecursionError:
        out.rejects.append(Reject(Reason.INVALID_PAYLOAD, "JSON nested too deeply"))
        return out

    # slow path: judge each element on its own
    try:
        raw = _GENERIC.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        out.rejects.append(Reject(Reason.INVALID_PAYLOAD, _short(str(exc) or "undecodable")))
        return out
    if isinstance(raw, list):
        if len(raw) > limits.max_array:
            out.rejects.append(
                Reject(Reason.OVERSIZED, f"{len(raw)} elements > limit {limits.max_array}")
            )
            return out
        elements: list[tuple[int | None, Any]] = list(enumerate(raw))
    else:
        elements = [(None, raw)]
    for i, element in elements:
        if not isinstance(element, dict):
            out.rejects.append(
                Reject(
                    Reason.INVALID_PAYLOAD,
                    f"expected a JSON object, got {type(element).__name__}",
                    i,
                )
            )
            continue
        try:
            item = msgspec.convert(element, ptype)
        except msgspec.ValidationError as exc:
            msg = str(exc)
            reason = (
                Reason.IMPOSSIBLE_VALUE
                if _BOUND.search(msg) and not _LENGTH.search(msg)
                else Reason.INVALID_PAYLOAD
            )
            out.rejects.append(Reject(reason, _short(msg), i))
            continue
        _accept(channel, item, i, device_id, _Window(received_at, limits), out)
    return out


class _Window:
    """The accepted span of event times around one message's arrival."""

    __slots__ = ("hi", "hi_ms", "lo", "lo_ms", "received_at")

    def __init__(self, received_at: datetime, limits: Limits) -> None:
        self.received_at = received_at
        self.lo = received_at - limits.max_backfill
        self.hi = received_at + limits.max_future
        self.lo_ms = int(self.lo.timestamp() * 1000)
        self.hi_ms = int(self.hi.timestamp() * 1000)


def _accept(
    channel: str, item: Any, index: int | None, device_id: str, window: _Window, out: Decoded
) -> None:
    raw_ts = item.ts
    if type(raw_ts) is int and window.lo_ms <= raw_ts <= window.hi_ms:  # the common case, fast
        ts: datetime | None = datetime.fromtimestamp(raw_ts / 1000, UTC)
    else:
        ts = parse_ts(raw_ts)
        if ts is None:
            out.rejects.append(
                Reject(
                    Reason.INVALID_PAYLOAD,
                    f"ts {raw_ts!r} is neither RFC 3339 with an offset nor epoch milliseconds",
                    index,
                )
            )
            return
        if ts > window.hi or ts < window.lo:
            out.rejects.append(
                Reject(
                    Reason.CLOCK_SKEW,
                    f"ts {ts.isoformat()} is too far from arrival {window.received_at.isoformat()}",
                    index,
                )
            )
            return
    if channel == "vitals":
        if (
            item.hr is None
            and item.spo2 is None
            and item.sbp is None
            and item.dbp is None
            and item.temp is None
            and item.rr is None
            and item.steps is None
            and item.battery is None
            and item.worn is None
        ):
            out.rejects.append(Reject(Reason.EMPTY, "vitals sample carries no value", index))
            return
        if item.sbp is not None and item.dbp is not None and item.dbp >= item.sbp:
            out.rejects.append(
                Reject(Reason.IMPOSSIBLE_VALUE, f"dbp {item.dbp} >= sbp {item.sbp}", index)
            )
            return
        out.readings.append(
            Vitals(
                device_id,
                item.seq,
                ts,
                item.hr,
                item.spo2,
                item.sbp,
                item.dbp,
                item.temp,
                item.rr,
                item.steps,
                item.battery,
                item.worn,
            )
        )
    elif channel == "location":
        out.readings.append(
            Position(device_id, item.seq, ts, item.lat, item.lon, item.acc, item.src)
        )
    else:
        out.readings.append(Event(device_id, item.seq, ts, item.type, item.kind, item.accel))


def parse_ts(value: int | str) -> datetime | None:
    """RFC 3339 with an offset, or integer epoch milliseconds, as an aware UTC datetime.

    >>> parse_ts(1764316800000).isoformat()
    '2025-11-28T08:00:00+00:00'
    >>> parse_ts("2025-11-28T16:00:00+08:00").isoformat()
    '2025-11-28T08:00:00+00:00'
    >>> parse_ts("2025-11-28T16:00:00") is None  # no offset: ambiguous
    True
    """
    if isinstance(value, int):
        if not _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX:
            return None
        return datetime.fromtimestamp(value / 1000, UTC)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(UTC)


def _decode_status(payload: bytes, device_id: str, received_at: datetime, out: Decoded) -> None:
    text = payload.strip()
    if not payload:  # an empty retained publish deletes the retained status: not input
        return
    state: object = None
    ts: datetime | None = received_at
    if text in (b"online", b"offline"):
        state = text.decode()
    else:
        try:
            raw = _GENERIC.decode(text)
        except (msgspec.DecodeError, RecursionError) as exc:
            out.rejects.append(Reject(Reason.MALFORMED_JSON, _short(str(exc))))
            return
        if isinstance(raw, str):
            state = raw
        elif isinstance(raw, dict):
            state = raw.get("state")
            if "ts" in raw:
                ts = parse_ts(raw["ts"]) if isinstance(raw["ts"], int | str) else None
                if ts is None:
                    out.rejects.append(Reject(Reason.INVALID_PAYLOAD, "status ts is not a time"))
                    return
    if state not in ("online", "offline"):
        out.rejects.append(Reject(Reason.INVALID_PAYLOAD, "status must be 'online' or 'offline'"))
        return
    out.readings.append(Status(device_id, ts, state == "online"))


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
