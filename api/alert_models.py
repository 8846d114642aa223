"""Request and response bodies of the alert API, and the table of per-elder settings
that may be overridden (``THRESHOLD_KNOBS``: the one place that says what is valid).

Overrides are ``{group: {field: value}}`` exactly as the detection engine reads them
(``alerts.ruleset``); ``tests/test_lifecycle.py`` checks every knob against the field
of the same name and type in its group's settings dataclass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from alerts.core import Severity
from alerts.lifecycle import AlertState, Outcome
from alerts.ruleset import SETTINGS_GROUPS

# Until accounts exist (a later issue), who did it is a free-text name.
By = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
PersonOutcome = Literal[
    "handled", "false_alarm", "hospital", "transferred", "no_action", "duplicate"
]


def _as_utc(t: datetime | None) -> datetime | None:
    return t.astimezone(UTC) if t is not None and t.tzinfo is not None else t


Utc = Annotated[datetime, AfterValidator(_as_utc)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertPublic(BaseModel):
    """One alert: exactly what REST returns and what the WebSocket pushes."""

    id: int
    elder_id: int
    elder_name: str | None
    kind: str
    severity: Severity
    state: AlertState
    message: str
    value: float | None
    detail: dict[str, Any]
    incident_id: int
    count: int
    suppressed: int
    first_ts: Utc
    last_ts: Utc
    opened_at: Utc
    updated_at: Utc
    acknowledged_at: Utc | None
    acknowledged_by: str | None
    resolved_at: Utc | None
    resolved_by: str | None
    outcome: Outcome | None
    note: str | None
    escalation_level: int
    cleared_at: Utc | None


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class AlertEventPublic(BaseModel):
    id: int
    at: Utc
    actor: str
    action: str
    from_state: AlertState | None
    to_state: AlertState | None
    detail: dict[str, Any]


class AlertReadings(BaseModel):
    """Raw readings of the elder within 15 minutes either side of the first finding."""

    vitals: list[dict[str, Any]]
    positions: list[dict[str, Any]]
    events: list[dict[str, Any]]


class AlertDetail(AlertPublic):
    history: list[AlertEventPublic]
    readings: AlertReadings


class AcknowledgeRequest(_Strict):
    by: By
    note: Note | None = None


class ResolveRequest(_Strict):
    by: By
    outcome: PersonOutcome
    note: Note | None = None


class IllegalTransitionProblem(BaseModel):
    detail: str
    state: AlertState


class FalseAlarmCounts(BaseModel):
    resolved: int
    judged: int  # resolved by a person (not self_cleared / withdrawn): the rate's base
    false_alarms: int
    false_alarm_rate: float | None


class ElderFalseAlarms(FalseAlarmCounts):
    elder_id: int
    elder_name: str


class AlertStats(BaseModel):
    since: Utc | None
    by_kind: dict[str, FalseAlarmCounts]
    by_elder: list[ElderFalseAlarms]


# --- per-elder thresholds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Knob:
    """One overridable setting: its type and, for numbers, the sane range."""

    type: type[int] | type[float] | type[bool]
    lo: float | None = None
    hi: float | None = None

    def check(self, where: str, value: Any) -> Any:
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number")
        if self.type is int and not isinstance(value, int):
            raise ValueError(f"{where} must be a whole number")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number")
        assert self.lo is not None and self.hi is not None
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{where} must be between {self.lo:g} and {self.hi:g} (got {value:g})")
        return value


# What staff may set per elder, by settings group (``alerts.ruleset.SETTINGS_GROUPS``,
# the form the detection engine reads: ``{group: {field: value}}``).  A field of the
# rule's settings that is not listed here keeps its default: no range, no override.
THRESHOLD_KNOBS: Final[dict[str, dict[str, Knob]]] = {
    "vitals": {  # every news2_* rule
        "hypercapnic": Knob(bool),  # SpO2 scale 2 (COPD, target 88-92 %)
        "on_oxygen": Knob(bool),
        "min_score": Knob(int, 1, 3),
        "aggregate_medium_at": Knob(int, 1, 20),
        "aggregate_critical_at": Knob(int, 1, 20),
    },
    "heart_rate": {"rest_high": Knob(float, 80, 180), "defer_at": Knob(float, 100, 200)},
    "baseline": {
        "h": Knob(float, 4, 200),
        "k": Knob(float, 0.25, 3),
        "min_scale": Knob(float, 1, 20),
    },
    "fall": {
        "confirm_window_s": Knob(float, 10, 600),
        "still_after_s": Knob(float, 60, 3600),
        "moved_steps": Knob(int, 1, 500),
        "episode_s": Knob(float, 300, 7200),
        "judge_burst": Knob(bool),
    },
    "fever": {
        "fever_c": Knob(float, 37.3, 39.5),
        "high_c": Knob(float, 37.5, 41.0),
        "sustain_minutes": Knob(float, 0, 240),
        "normal_c": Knob(float, 36.5, 38.5),
    },
    "geofence": {
        "home_radius_m": Knob(float, 30, 2000),
        "exit_margin_m": Knob(float, 0, 500),
        "confirm_fixes": Knob(int, 1, 10),
        # Local hours (0-24, may wrap midnight) when leaving home is urgent.
        "night_start_h": Knob(float, 0, 24),
        "night_end_h": Knob(float, 0, 24),
        "return_minutes": Knob(float, 0, 120),
    },
    "inactivity": {"threshold_minutes": Knob(float, 30, 1440), "min_steps": Knob(int, 1, 200)},
    "offline": {"missed_intervals": Knob(int, 2, 100), "min_silence_s": Knob(float, 60, 86400)},
    "not_worn": {"off_minutes": Knob(float, 5, 720)},
    "battery": {"low_pct": Knob(float, 5, 50), "clear_pct": Knob(float, 10, 100)},
}
# (group, lower, upper): the first must stay below the second, defaults included.
ORDERED_KNOBS: Final = (
    ("vitals", "aggregate_medium_at", "aggregate_critical_at"),
    ("heart_rate", "rest_high", "defer_at"),
    ("battery", "low_pct", "clear_pct"),
    ("fever", "fever_c", "high_c"),
    ("fever", "normal_c", "high_c"),
)
# Alert kinds people may type instead of the group that configures them.
_GROUP_OF_KIND: Final = {
    "hr_activity": "heart_rate",
    "baseline_drift": "baseline",
    "geofence_exit": "geofence",
    "device_offline": "offline",
    "low_battery": "battery",
}


def _group_hint(key: str) -> str:
    group = "vitals" if key.startswith("news2_") else _GROUP_OF_KIND.get(key)
    if key == "sos":
        return " (an SOS cannot be configured away)"
    return f" (the {key} rule is set under {group!r})" if group else ""


def validate_thresholds(overrides: dict[str, Any]) -> dict[str, Any]:
    """Check an elder's overrides against ``THRESHOLD_KNOBS``; ValueError says what is wrong.

    >>> validate_thresholds({"fall": {"confirm_window_s": 90}})
    {'fall': {'confirm_window_s': 90}}
    >>> validate_thresholds({"fall": {"confirm_window_s": 5}})
    Traceback (most recent call last):
    ...
    ValueError: fall.confirm_window_s must be between 10 and 600 (got 5)
    """
    for group, knobs in overrides.items():
        if group not in THRESHOLD_KNOBS:
            known = ", ".join(sorted(THRESHOLD_KNOBS))
            raise ValueError(
                f"unknown settings group {group!r}{_group_hint(group)}; known: {known}"
            )
        if not isinstance(knobs, dict):
            raise ValueError(f"{group} must be an object of settings")
        allowed = THRESHOLD_KNOBS[group]
        for name, value in knobs.items():
            if name not in allowed:
                raise ValueError(
                    f"{group} has no setting {name!r} (settable: {', '.join(sorted(allowed))})"
                )
            allowed[name].check(f"{group}.{name}", value)
    for group, low, high in ORDERED_KNOBS:
        given = overrides.get(group, {})
        if low not in given and high not in given:
            continue
        defaults = SETTINGS_GROUPS[group]()
        a, b = given.get(low, getattr(defaults, low)), given.get(high, getattr(defaults, high))
        if a >= b:
            raise ValueError(f"{group}.{low} ({a:g}) must be below {group}.{high} ({b:g})")
    return overrides


class ThresholdsUpdate(_Strict):
    by: By
    thresholds: dict[str, Any]

    @field_validator("thresholds")
    @classmethod
    def _known_and_sane(cls, value: dict[str, Any]) -> dict[str, Any]:
        return validate_thresholds(value)


class ThresholdsPublic(BaseModel):
    elder_id: int
    thresholds: dict[str, Any]
    updated_at: Utc | None
    updated_by: str | None
