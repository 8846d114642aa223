"""Request and response bodies of the family API (``api/routes/family.py``).

Timestamps sent back are UTC; the page shows them in Asia/Shanghai.  A family member
sees what happened and how it ended, not the staff's internal notes or names.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from alerts.core import Severity
from alerts.lifecycle import AlertState, Outcome
from api.order_models import Note, When
from orders.catalogue import ServiceKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkedElder(BaseModel):
    elder_id: int
    name: str
    community: str | None
    relation: str | None
    consent_recorded_at: datetime | None
    consented_by: str | None


class LinkedElders(BaseModel):
    data: list[LinkedElder]
    count: int


class AlertBrief(BaseModel):
    """An alert as a family member sees it: what, how bad, when, and how it ended."""

    id: int
    kind: str
    severity: Severity
    state: AlertState
    message: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    outcome: Outcome | None


class AlertBriefs(BaseModel):
    data: list[AlertBrief]
    count: int


class Location(BaseModel):
    precision: Literal["coarse", "precise"]
    reason: str = Field(description="why this precision (precise only during a critical alert)")
    lat: float
    lon: float
    acc_m: float | None
    ts: datetime | None
    area: str | None = Field(description="the community the elder belongs to")


class VitalsHour(BaseModel):
    hour: datetime = Field(description="start of the hour, UTC")
    samples: int
    hr: float | None
    hr_min: float | None
    hr_max: float | None
    spo2: float | None
    spo2_min: float | None
    spo2_max: float | None
    sbp: float | None
    sbp_min: float | None
    sbp_max: float | None
    dbp: float | None
    dbp_min: float | None
    dbp_max: float | None
    temp: float | None
    temp_min: float | None
    temp_max: float | None


class VitalsDay(BaseModel):
    day: date = Field(description="the Asia/Shanghai calendar day")
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    start: datetime
    end: datetime
    hours: list[VitalsHour]


class ElderNow(BaseModel):
    elder_id: int
    name: str
    community: str | None
    status: Literal["safe", "alert"]
    open_alerts: list[AlertBrief]
    last_seen: datetime | None
    online: bool | None
    battery: float | None
    worn: bool | None
    last_vitals: dict[str, Any] = Field(description="newest hr, spo2, sbp, dbp, temp and ts")
    location: Location | None
    today: VitalsDay
    server_time: datetime


ChannelKind = Literal["in_app", "wecom", "dingtalk", "email", "sms", "webhook"]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 -]{6,20}$")
_URL = re.compile(r"^https://\S+$")
# What each kind's address must look like; in-app needs none (the signed-in page).
_ADDRESS_RULES: dict[str, tuple[re.Pattern[str] | None, str]] = {
    "email": (_EMAIL, "an e-mail address"),
    "sms": (_PHONE, "a phone number"),
    "webhook": (_URL, "an https:// URL"),
    "wecom": (_URL, "the group robot's https:// webhook URL"),
    "dingtalk": (_URL, "the group robot's https:// webhook URL"),
}


class Channel(_Strict):
    kind: ChannelKind
    address: Address | None = None

    @model_validator(mode="after")
    def _address_fits(self) -> Channel:
        if self.kind == "in_app":
            self.address = None
            return self
        pattern, what = _ADDRESS_RULES[self.kind]
        if self.address is None or (pattern is not None and not pattern.match(self.address)):
            raise ValueError(f"a {self.kind} channel needs {what} as its address")
        return self


class NotifyPreferences(_Strict):
    channels: list[Channel] = Field(max_length=6)
    quiet_start: time | None = Field(None, description="Asia/Shanghai wall-clock, e.g. 22:00")
    quiet_end: time | None = Field(None, description="e.g. 07:00; both or neither")

    @model_validator(mode="after")
    def _quiet_whole(self) -> NotifyPreferences:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end come together (or both empty)")
        kinds = [c.kind for c in self.channels]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each channel kind at most once")
        return self


class NotifyPreferencesPublic(NotifyPreferences):
    updated_at: datetime | None


class FamilyOrderCreate(_Strict):
    kind: ServiceKind
    due_at: When | None = Field(None, description="booked time; none = as soon as possible")
    notes: Note | None = None
