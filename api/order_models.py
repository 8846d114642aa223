"""Request and response bodies of the 六助 API (orders, caregivers, plans, schedules,
reports).  An order's JSON is built by ``api.order_feed.order_json``, the same for REST
and the live feed; :class:`OrderPublic` documents and checks that shape.

Every timestamp a client sends must carry its offset (``AwareDatetime``: a naive one is
a 422 naming the field); every timestamp sent back is UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from orders.catalogue import CATALOGUE, ServiceKind, Skill
from orders.schedule import weekdays

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Accuracy = Annotated[float, Field(ge=0, le=100_000)]


def _as_utc(t: datetime | None) -> datetime | None:
    return t.astimezone(UTC) if t is not None and t.tzinfo is not None else t


Utc = Annotated[datetime, AfterValidator(_as_utc)]
When = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    detail: str


# --- service kinds -----------------------------------------------------------------------


class ServiceKindPublic(BaseModel):
    kind: ServiceKind
    zh: str
    en: str
    duration_min: float
    accept_target_min: float
    arrive_target_min: float
    window_before_min: float
    window_after_min: float
    skills: list[Skill]
    price_fen: int
    urgent: bool


_EN = {
    ServiceKind.MEAL: "Meals",
    ServiceKind.CLEANING: "Cleaning",
    ServiceKind.BATHING: "Bathing",
    ServiceKind.MOBILITY: "Mobility",
    ServiceKind.EMERGENCY: "Emergency",
    ServiceKind.MEDICAL: "Medical",
}


def service_kinds() -> list[ServiceKindPublic]:
    def m(t: Any) -> float:
        return t.total_seconds() / 60

    return [
        ServiceKindPublic(
            kind=k,
            zh=k.zh,
            en=_EN[k],
            duration_min=m(s.duration),
            accept_target_min=m(s.level.accept),
            arrive_target_min=m(s.level.arrive),
            window_before_min=m(s.level.window[0]),
            window_after_min=m(s.level.window[1]),
            skills=sorted(s.skills),
            price_fen=s.price_fen,
            urgent=s.urgent,
        )
        for k, s in CATALOGUE.items()
    ]


# --- orders ------------------------------------------------------------------------------


class OrderCreate(_Strict):
    elder_id: Id
    kind: ServiceKind
    due_at: When | None = Field(None, description="booked time (e.g. today's 11:30 lunch)")
    notes: Note | None = None


StepAction = Literal["assign", "accept", "reject", "depart", "arrive", "complete", "cancel"]


class StepRequest(_Strict):
    action: StepAction
    version: Annotated[int, Field(ge=1)] | None = Field(
        None, description="the version you saw; a stale one is a 409"
    )
    caregiver_id: Id | None = Field(None, description="assign: to whom (staff)")
    lat: Lat | None = None
    lon: Lon | None = None
    acc: Accuracy | None = Field(None, description="horizontal accuracy of the fix, metres")
    ts: When | None = Field(None, description="when the fix was taken (default: now)")
    note: Note = ""

    @model_validator(mode="after")
    def _fix_whole(self) -> StepRequest:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon come together")
        return self


class Deadlines(BaseModel):
    accept_by: Utc | None
    arrive_by: Utc | None
    window_start: Utc | None
    window_end: Utc | None


class BreachPublic(BaseModel):
    kind: str
    due: Utc
    late_by_s: float


class ElderPlace(BaseModel):
    lat: float | None
    lon: float | None
    address: str | None


class StepPublic(BaseModel):
    at: Utc
    action: str
    from_state: str | None
    to_state: str
    actor_role: str
    actor_id: int | None
    caregiver_id: int | None
    note: str
    detail: dict[str, Any]


class OrderPublic(BaseModel):
    id: int
    elder_id: int
    elder_name: str | None
    kind: ServiceKind
    kind_zh: str
    state: str
    source: str
    caregiver_id: int | None
    caregiver_name: str | None
    requested_at: Utc
    due_at: Utc | None
    updated_at: Utc
    version: int
    notes: str | None
    completion_note: str | None
    alert_id: int | None
    escalation_level: int
    dispatch_note: dict[str, Any] | None
    deadlines: Deadlines
    breaches: list[BreachPublic]
    allowed_actions: list[str]
    elder: ElderPlace


class OrderDetail(OrderPublic):
    steps: list[StepPublic]


class OrdersPublic(BaseModel):
    items: list[OrderPublic]
    total: int


class StepConflict(BaseModel):
    detail: str
    state: str
    allowed: list[str]
    version: int


class CheckInConflict(BaseModel):
    detail: str
    distance_m: float
    verdict: str


class DispatchConflict(BaseModel):
    detail: str
    funnel: dict[str, Any]


# --- caregivers --------------------------------------------------------------------------


class CaregiverCreate(_Strict):
    name: Name
    phone: Phone | None = None
    skills: list[Skill] = Field(default_factory=list)
    max_load: Annotated[int, Field(ge=0, le=50)] = 3
    active: bool = True
    community_id: Id | None = None

    @field_validator("skills")
    @classmethod
    def _unique(cls, v: list[Skill]) -> list[Skill]:
        return sorted(set(v))


class CaregiverUpdate(_Strict):
    name: Name | None = None
    phone: Phone | None = None
    skills: list[Skill] | None = None
    max_load: Annotated[int, Field(ge=0, le=50)] | None = None
    active: bool | None = None
    community_id: Id | None = None

    @field_validator("skills")
    @classmethod
    def _unique(cls, v: list[Skill] | None) -> list[Skill] | None:
        return None if v is None else sorted(set(v))


class CaregiverPublic(BaseModel):
    id: int
    name: str
    phone: str | None
    skills: list[str]
    max_load: int
    active: bool
    community_id: int | None = None
    on_shift: bool
    active_orders: int
    last_lat: float | None
    last_lon: float | None
    last_acc: float | None
    last_pos_at: Utc | None


class ShiftCreate(_Strict):
    starts_at: When
    ends_at: When | None = Field(None, description="absent: clocked in, end not known")

    @model_validator(mode="after")
    def _order(self) -> ShiftCreate:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ShiftPublic(BaseModel):
    id: int
    caregiver_id: int
    starts_at: Utc
    ends_at: Utc | None


class PositionReport(_Strict):
    lat: Lat
    lon: Lon
    acc: Accuracy | None = None
    ts: When | None = Field(None, description="when the fix was taken (default: now)")


# --- plans, usage, schedules ---------------------------------------------------------------


PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class SubscriptionPut(_Strict):
    plan_code: PlanCode
    starts_on: date
    ends_on: date | None = None

    @model_validator(mode="after")
    def _order(self) -> SubscriptionPut:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class SubscriptionPublic(BaseModel):
    elder_id: int
    plan_code: str
    plan_name: str
    price_fen: int
    allowances: dict[str, int | None]
    starts_on: date
    ends_on: date | None


class UsageLinePublic(BaseModel):
    kind: ServiceKind
    kind_zh: str
    used: int
    included: int | None
    remaining: int | None
    extra: int
    extra_fen: int


class UsagePublic(BaseModel):
    elder_id: int
    month: str
    plan_code: str | None
    fee_fen: int
    extra_fen: int
    total_fen: int
    lines: list[UsageLinePublic]


def _weekdays(v: str) -> str:
    weekdays(v)  # raises ValueError naming the bad part
    return v.lower().replace(" ", "")


def _local_time(v: str) -> str:
    try:
        t = time.fromisoformat(v)
    except ValueError:
        raise ValueError(f"local_time must be HH:MM (Asia/Shanghai), not {v!r}") from None
    if t.tzinfo is not None:
        raise ValueError("local_time is wall-clock time in Asia/Shanghai: no offset")
    return t.strftime("%H:%M")


class ScheduleCreate(_Strict):
    kind: ServiceKind
    weekdays: Annotated[
        str, StringConstraints(min_length=3, max_length=40), AfterValidator(_weekdays)
    ] = Field(description='"mon-fri", "thu", "mon,wed,fri"')
    local_time: Annotated[str, AfterValidator(_local_time)] = Field(
        description='"11:30", Asia/Shanghai'
    )
    starts_on: date | None = Field(None, description="default: today (Asia/Shanghai)")
    ends_on: date | None = None
    notes: Note | None = None

    @field_validator("kind")
    @classmethod
    def _bookable(cls, v: ServiceKind) -> ServiceKind:
        if CATALOGUE[v].urgent:
            raise ValueError(f"{v.zh} ({v.value}) is dispatched at once, never booked ahead")
        return v

    @model_validator(mode="after")
    def _order(self) -> ScheduleCreate:
        if self.ends_on and self.starts_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class SchedulePublic(BaseModel):
    id: int
    elder_id: int
    kind: ServiceKind
    weekdays: str
    local_time: str
    starts_on: date
    ends_on: date | None
    active: bool
    notes: str | None
    created_at: Utc

    @field_validator("local_time", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        return v.strftime("%H:%M") if isinstance(v, time) else v


ReportBy = Literal["elder", "caregiver"]
ReportFormat = Literal["json", "csv"]
# Years 1900-2999: year 0 or 9999-12 (whose next month is year 10000) cannot be a date.
MonthParam = Annotated[str, StringConstraints(pattern=r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$")]
