"""Stored readings of some devices since a time, as readings for the rules.

A worker that takes a partition over restores the rules' last saved state and then
feeds them what was stored after it: the readings its predecessor committed (and
judged) after its last snapshot.  Statuses live only in ``latest_state`` and are not
replayed; every other channel is.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import psycopg

from protocol.messages import AccelBurst, Event, Position, Reading, Vitals

Item = tuple[int | None, Reading]
_JSON = msgspec.json.Decoder()

_VITALS = (
    "SELECT ts, device_id, seq, elder_id, hr, spo2, sbp, dbp, temp, rr, steps, battery, worn"
    " FROM vitals WHERE device_id = ANY(%s) AND ts > %s AND elder_id IS NOT NULL"
)
_POSITIONS = (
    "SELECT ts, device_id, seq, elder_id, lat, lon, acc, src"
    " FROM positions WHERE device_id = ANY(%s) AND ts > %s AND elder_id IS NOT NULL"
)
_EVENTS = (
    "SELECT ts, device_id, seq, elder_id, type, kind, accel"
    " FROM device_events WHERE device_id = ANY(%s) AND ts > %s AND elder_id IS NOT NULL"
)


def stored_since(conn: psycopg.Connection, devices: list[str], since: datetime) -> list[Item]:
    """Readings of ``devices`` with event time after ``since``, in event-time order."""
    if not devices:
        return []
    out: list[tuple[datetime, int, Item]] = []
    for ts, dev, seq, elder, hr, spo2, sbp, dbp, temp, rr, steps, batt, worn in conn.execute(
        _VITALS, (devices, since)
    ):
        r = Vitals(dev, seq, ts, hr, spo2, sbp, dbp, temp, rr, steps, batt, worn)
        out.append((ts, seq, (elder, r)))
    for ts, dev, seq, elder, lat, lon, acc, src in conn.execute(_POSITIONS, (devices, since)):
        out.append((ts, seq, (elder, Position(dev, seq, ts, lat, lon, acc, src))))
    for ts, dev, seq, elder, typ, kind, accel in conn.execute(_EVENTS, (devices, since)):
        if isinstance(accel, str):  # the writer's COPY stores the burst as JSON text
            accel = _JSON.decode(accel)
        burst = msgspec.convert(accel, AccelBurst) if accel is not None else None
        out.append((ts, seq, (elder, Event(dev, seq, ts, typ, kind, burst))))
    conn.commit()
    out.sort(key=lambda x: (x[0], x[1]))
    return [item for _, _, item in out]
