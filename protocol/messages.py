"""Typed payloads (what a device sends) and readings (what the backend keeps).

Payload structs mirror the JSON on the wire and carry the physical limits of each
value: a reading outside them is impossible, not merely alarming, and goes to the
quarantine.  Readings add the device id and a real UTC timestamp.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Ts = int | str

Source = Literal["gps", "wifi", "lbs", "beacon"]
EventType = Literal[
    "sos", "fall", "cancel", "service", "off_wrist", "on_wrist", "low_battery", "power_off"
]
ServiceKind = Literal["meal", "cleaning", "bathing", "mobility", "emergency", "medical"]
MAX_ACCEL_SAMPLES = 2000


class VitalsPayload(msgspec.Struct, frozen=True, gc=False):
    ts: Ts
    seq: Seq
    hr: Annotated[float, Meta(ge=20, le=250)] | None = None
    spo2: Annotated[float, Meta(ge=50, le=100)] | None = None
    sbp: Annotated[float, Meta(ge=50, le=260)] | None = None
    dbp: Annotated[float, Meta(ge=25, le=160)] | None = None
    temp: Annotated[float, Meta(ge=30, le=43.5)] | None = None
    rr: Annotated[float, Meta(ge=3, le=70)] | None = None
    steps: Annotated[int, Meta(ge=0, le=200_000)] | None = None
    battery: Annotated[float, Meta(ge=0, le=100)] | None = None
    worn: bool | None = None


class LocationPayload(msgspec.Struct, frozen=True, gc=False):
    ts: Ts
    seq: Seq
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    acc: Annotated[float, Meta(ge=0, le=50_000)]
    src: Source = "gps"


class AccelBurst(msgspec.Struct, frozen=True, gc=False):
    hz: Annotated[float, Meta(gt=0, le=1000)]
    g: Annotated[
        list[
            Annotated[list[Annotated[float, Meta(ge=-64, le=64)]], Meta(min_length=3, max_length=3)]
        ],
        Meta(min_length=1, max_length=MAX_ACCEL_SAMPLES),
    ]


class EventPayload(msgspec.Struct, frozen=True, gc=False):
    ts: Ts
    seq: Seq
    type: EventType
    kind: ServiceKind | None = None
    accel: AccelBurst | None = None


# --- readings: what the rest of the backend works with ---------------------


class Vitals(msgspec.Struct, frozen=True, gc=False):
    device_id: str
    seq: int
    ts: datetime
    hr: float | None = None
    spo2: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    temp: float | None = None
    rr: float | None = None
    steps: int | None = None
    battery: float | None = None
    worn: bool | None = None


class Position(msgspec.Struct, frozen=True, gc=False):
    device_id: str
    seq: int
    ts: datetime
    lat: float
    lon: float
    acc: float
    src: Source


class Event(msgspec.Struct, frozen=True, gc=False):
    device_id: str
    seq: int
    ts: datetime
    type: EventType
    kind: ServiceKind | None = None
    accel: AccelBurst | None = None


class Status(msgspec.Struct, frozen=True, gc=False):
    device_id: str
    ts: datetime
    online: bool


Reading = Vitals | Position | Event | Status
VITAL_FIELDS = ("hr", "spo2", "sbp", "dbp", "temp", "rr", "steps", "battery", "worn")
