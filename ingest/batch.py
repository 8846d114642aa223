"""Pure assembly of one ingest batch: inbound MQTT messages in, rows to write out.

No I/O here: the device directory is passed in as a lookup function, the clock as
each message's arrival time.  The shell (``ingest.service``) writes the batch and
only then acknowledges the messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from protocol.decode import Decoded, Limits, Reason, Reject, decode
from protocol.messages import Event, Position, Reading, Status, Vitals
from protocol.topics import parse_topic
from storage.writer import Batch

# (device_id) -> (known, elder_id): unknown devices are quarantined; a known but
# unpaired device's samples are kept without an elder.
Lookup = Callable[[str], tuple[bool, int | None]]
_ENCODE = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    generation: int = 0  # which broker connection delivered it (acks are per connection)


@dataclass(slots=True)
class Assembled:
    batch: Batch
    readings: list[tuple[int | None, Reading]] = field(default_factory=list)  # (elder, reading)
    live: dict[int, dict[str, Any]] = field(default_factory=dict)  # elder -> newest fields
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    duplicates: int = 0  # samples repeated within this batch (dropped before COPY)


def assemble(messages: list[Inbound], lookup: Lookup, limits: Limits, raw_limit: int) -> Assembled:
    out = Assembled(Batch())
    seen: set[tuple[str, int, datetime]] = set()
    vitals_by_elder: dict[int, list[Vitals]] = {}
    for msg in messages:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            _quarantine(
                out,
                msg,
                None,
                Reject(Reason.BAD_TOPIC, "not an uplink topic of the device protocol"),
                raw_limit,
            )
            continue
        device_id, channel = parsed
        known, elder_id = lookup(device_id)
        if not known:
            _quarantine(
                out,
                msg,
                device_id,
                Reject(Reason.UNKNOWN_DEVICE, f"device {device_id} is not enrolled"),
                raw_limit,
            )
            continue
        decoded: Decoded = decode(
            channel, msg.payload, device_id=device_id, received_at=msg.received_at, limits=limits
        )
        for reject in decoded.rejects:
            _quarantine(out, msg, device_id, reject, raw_limit)
        _add_all(out, elder_id, decoded.readings, msg.received_at, seen, vitals_by_elder)
    _finish_latest(out, vitals_by_elder)
    return out


def _add_all(
    out: Assembled,
    elder_id: int | None,
    readings: list[Reading],
    received_at: datetime,
    seen: set[tuple[str, int, datetime]],
    vitals_by_elder: dict[int, list[Vitals]],
) -> None:
    """Rows for one message's readings (all of one channel, one device): a tight loop,
    since an uploaded array may hold thousands of samples."""
    rows = out.batch.rows
    for r in readings:
        if type(r) is not Status:
            key = (r.device_id, r.seq, r.ts)
            if key in seen:  # the same sample twice in one batch: COPY would reject it
                out.duplicates += 1
                continue
            seen.add(key)
        out.readings.append((elder_id, r))
        if type(r) is Vitals:
            rows["vitals"].append(
                (
                    r.ts,
                    r.device_id,
                    r.seq,
                    elder_id,
                    r.hr,
                    r.spo2,
                    r.sbp,
                    r.dbp,
                    r.temp,
                    r.rr,
                    r.steps,
                    r.battery,
                    r.worn,
                    received_at,
                )
            )
            if elder_id is not None:
                vitals_by_elder.setdefault(elder_id, []).append(r)
        elif type(r) is Position:
            rows["positions"].append(
                (r.ts, r.device_id, r.seq, elder_id, r.lat, r.lon, r.acc, r.src, received_at)
            )
            if elder_id is not None:
                live = out.live.setdefault(elder_id, {})
                if live.get("pos_ts") is None or live["pos_ts"] <= r.ts:
                    live.update(
                        device_id=r.device_id,
                        pos_ts=r.ts,
                        lat=r.lat,
                        lon=r.lon,
                        acc=r.acc,
                        src=r.src,
                    )
        elif type(r) is Event:
            accel = _ENCODE.encode(r.accel).decode() if r.accel is not None else None
            rows["device_events"].append(
                (r.ts, r.device_id, r.seq, elder_id, r.type, r.kind, accel, received_at)
            )
            if elder_id is not None:
                live = out.live.setdefault(elder_id, {})
                if live.get("event_ts") is None or live["event_ts"] <= r.ts:
                    live.update(device_id=r.device_id, event_ts=r.ts, event_type=r.type)
        else:
            assert isinstance(r, Status)
            out.batch.latest.statuses.append((elder_id, r.device_id, r.ts, r.online))
            if elder_id is not None:
                out.live.setdefault(elder_id, {}).update(online=r.online, status_at=r.ts)


_VITAL_FIELDS = ("hr", "spo2", "sbp", "dbp", "temp", "rr", "steps", "battery", "worn")


def _newest_vitals(samples: list[Vitals]) -> dict[str, Any]:
    """The newest value of each vital sign among ``samples`` (a sample carries only some)."""
    ordered = sorted(samples, key=lambda v: v.ts, reverse=True)
    newest = ordered[0]
    found: dict[str, Any] = {"vitals_ts": newest.ts, "device_id": newest.device_id}
    missing = list(_VITAL_FIELDS)
    for v in ordered:
        still = []
        for f in missing:
            value = getattr(v, f)
            if value is None:
                still.append(f)
            else:
                found[f] = value
        missing = still
        if not missing:
            break
    return found


def _finish_latest(out: Assembled, vitals_by_elder: dict[int, list[Vitals]]) -> None:
    """Turn the per-elder newest values into the writer's ``latest_state`` rows."""
    for elder_id, samples in vitals_by_elder.items():
        out.live.setdefault(elder_id, {}).update(_newest_vitals(samples))
    latest = out.batch.latest
    for elder_id, v in out.live.items():
        device = v.get("device_id")
        if "pos_ts" in v:
            latest.positions.append(
                (elder_id, device, v["pos_ts"], v["lat"], v["lon"], v["acc"], v["src"])
            )
        if "vitals_ts" in v:
            latest.vitals.append(
                (elder_id, device, v["vitals_ts"], *(v.get(f) for f in _VITAL_FIELDS))
            )
        if "event_ts" in v:
            latest.events.append((elder_id, device, v["event_ts"], v["event_type"]))


def reject_by_database(msg: Inbound, error: str, raw_limit: int) -> Assembled:
    """A message the database refused, as a batch that only quarantines it."""
    out = Assembled(Batch())
    parsed = parse_topic(msg.topic)
    reject = Reject(Reason.REJECTED_BY_DATABASE, error.strip()[:300])
    _quarantine(out, msg, parsed[0] if parsed else None, reject, raw_limit)
    return out


def _quarantine(
    out: Assembled, msg: Inbound, device_id: str | None, reject: Reject, raw_limit: int
) -> None:
    out.batch.quarantine.append(
        (
            msg.received_at,
            msg.topic[:300],
            device_id,
            str(reject.reason),
            reject.detail,
            reject.index,
            msg.payload[:raw_limit],
            len(msg.payload),
        )
    )
    out.rejected[str(reject.reason)] = out.rejected.get(str(reject.reason), 0) + 1
