"""Request and response bodies, one family per entity (Create / Update / Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text300 = Annotated[str, StringConstraints(max_length=300)]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ElderCreate(_Strict):
    name: Name
    gender: Literal["F", "M"] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    address: Text300 | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    home_lat: Lat | None = None
    home_lon: Lon | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None
    external_key: Annotated[str, StringConstraints(max_length=100)] | None = None


class ElderUpdate(_Strict):
    name: Name | None = None
    gender: Literal["F", "M"] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    address: Text300 | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    home_lat: Lat | None = None
    home_lon: Lon | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ElderPublic(BaseModel):
    id: int
    name: str
    gender: str | None
    birth_year: int | None
    address: str | None
    phone: str | None
    home_lat: float | None
    home_lon: float | None
    notes: str | None
    external_key: str | None
    created_at: datetime
    updated_at: datetime
    device_ids: list[str]


class EldersPublic(BaseModel):
    data: list[ElderPublic]
    count: int


class DeviceCreate(_Strict):
    id: DeviceId
    model: Annotated[str, StringConstraints(max_length=100)] | None = None
    report_interval_s: Annotated[int, Field(ge=1, le=86400)] = 60
    elder_id: int | None = None


class DeviceUpdate(_Strict):
    model: Annotated[str, StringConstraints(max_length=100)] | None = None
    report_interval_s: Annotated[int, Field(ge=1, le=86400)] | None = None


class PairRequest(_Strict):
    elder_id: int


class DevicePublic(BaseModel):
    id: str
    model: str | None
    elder_id: int | None
    report_interval_s: int
    online: bool | None
    status_at: datetime | None
    created_at: datetime


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class ElderLatest(BaseModel):
    elder_id: int
    name: str
    device_id: str | None
    home_lat: float | None = None
    home_lon: float | None = None
    last_seen: datetime | None = None
    pos_ts: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    acc: float | None = None
    src: str | None = None
    vitals_ts: datetime | None = None
    hr: float | None = None
    spo2: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    temp: float | None = None
    rr: float | None = None
    steps: int | None = None
    battery: float | None = None
    worn: bool | None = None
    event_ts: datetime | None = None
    event_type: str | None = None
    online: bool | None = None
    attention: bool = False
    attention_reasons: list[str] = []


class LatestPublic(BaseModel):
    server_time: datetime
    count: int
    elders: list[ElderLatest]


class VitalsBucket(BaseModel):
    bucket: datetime
    samples: int
    hr: float | None
    hr_min: float | None
    hr_max: float | None
    spo2: float | None
    spo2_min: float | None
    spo2_max: float | None
    sbp: float | None
    dbp: float | None
    temp: float | None
    temp_max: float | None
    rr: float | None
    battery: float | None
    steps: int | None
    worn: bool | None


class VitalsSeries(BaseModel):
    elder_id: int
    start: datetime
    end: datetime
    bucket_s: int
    data: list[VitalsBucket]


class PositionBucket(BaseModel):
    bucket: datetime
    ts: datetime
    lat: float
    lon: float
    acc: float
    src: str
    samples: int


class PositionSeries(BaseModel):
    elder_id: int
    start: datetime
    end: datetime
    bucket_s: int
    data: list[PositionBucket]


class QuarantineItem(BaseModel):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    item_index: int | None
    raw_size: int
    raw_preview: str = Field(description="The kept bytes as text (invalid UTF-8 replaced).")


class QuarantinePage(BaseModel):
    data: list[QuarantineItem]
    counts: dict[str, int]
    next_before_id: int | None


class DetectionHealth(BaseModel):
    """The detection process: caught up when ``readings_done == readings_submitted``."""

    ready: bool
    restored: bool
    readings_submitted: int
    readings_done: int
    alerts_recorded: int
    errors: int
    backlog: int = Field(0, description="Readings submitted and not yet processed.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    broker: bool | None
    schema_version: int
    storage: Literal["timescaledb", "postgresql"]
    ingest: dict[str, object] | None
    detection: DetectionHealth | None = None
    live_clients: int
    # Counts and sizes only: the health report is public and holds no personal data.
    database_bytes: int | None = None
    largest_tables: dict[str, int] = Field(
        default_factory=dict, description="Bytes on disk (with indexes) of the largest tables."
    )
    quarantine_last_hour: dict[str, int] = Field(
        default_factory=dict, description="Quarantined in the last hour, by reason."
    )
    open_alerts: dict[str, int] = Field(
        default_factory=dict, description="Alerts not yet resolved, by severity."
    )


class MapConfig(BaseModel):
    tile_url: str
    tile_crs: str
    # A list of two, not a tuple: FastAPI renders a tuple as a schema OpenAPI 3.1 rejects.
    center: Annotated[list[float], Field(min_length=2, max_length=2)]
    zoom: int
    live_interval_s: float


class Problem(BaseModel):
    detail: str
