"""Which rules watch an elder, with that elder's thresholds.

Per-elder thresholds are stored as ``{group: {field: value}}``, where a group names
one rule family's settings dataclass and a field one of its scalar settings:

>>> p = ElderProfile(1, thresholds={"vitals": {"hypercapnic": True}})
>>> vitals_settings(p).hypercapnic
True
>>> sorted(SETTINGS_GROUPS)[:3]
['baseline', 'fall', 'heart_rate']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from alerts.baseline import BaselineSettings
from alerts.core import Rule
from alerts.fall import FallRule, FallSettings
from alerts.heart_rate import HeartRateSettings, heart_rate_rules
from alerts.sos import SosRule
from alerts.vitals_rule import News2ParamRule, PartialNews2Rule, VitalsSettings

SETTINGS_GROUPS: dict[str, type] = {
    "vitals": VitalsSettings,
    "heart_rate": HeartRateSettings,
    "baseline": BaselineSettings,
    "fall": FallSettings,
}


@dataclass(frozen=True)
class ElderProfile:
    """What the rules need to know about one elder, beyond the readings."""

    elder_id: int
    home: tuple[float, float] | None = None  # (lat, lon) WGS-84
    community_outline: tuple[tuple[float, float], ...] | None = None  # [(lon, lat), ...]
    report_interval_s: int = 60
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Changes when anything the rules were built from changes."""
        blob = json.dumps(
            [self.home, self.community_outline, self.report_interval_s, self.thresholds],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def scalar_fields(cls: type) -> dict[str, type]:
    """The settings a person may override: the dataclass's bool/int/float/str fields."""
    out = {}
    for f in dataclasses.fields(cls):
        t = (
            f.type
            if isinstance(f.type, type)
            else {"bool": bool, "int": int, "float": float, "str": str}.get(str(f.type))
        )
        if t in (bool, int, float, str):
            out[f.name] = t
    return out


def settings_for(group: str, profile: ElderProfile) -> Any:
    cls = SETTINGS_GROUPS[group]
    overrides = {
        k: v for k, v in profile.thresholds.get(group, {}).items() if k in scalar_fields(cls)
    }
    return cls(**overrides)


def vitals_settings(profile: ElderProfile) -> VitalsSettings:
    return settings_for("vitals", profile)


def build_rules(profile: ElderProfile) -> list[Rule]:
    vitals = vitals_settings(profile)
    rules: list[Rule] = [
        SosRule(),
        FallRule(settings_for("fall", profile)),
        *heart_rate_rules(
            vitals, settings_for("heart_rate", profile), settings_for("baseline", profile)
        ),
        *(News2ParamRule(p, vitals) for p in ("spo2", "sbp", "rr", "temp")),
        PartialNews2Rule(vitals),
    ]
    return rules
