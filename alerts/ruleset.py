"""Which rules watch an elder, with that elder's thresholds.

Per-elder thresholds are stored as ``{group: {field: value}}``, where a group names
one rule family's settings dataclass and a field one of its scalar settings:

>>> p = ElderProfile(1, thresholds={"vitals": {"hypercapnic": True}})
>>> vitals_settings(p).hypercapnic
True
>>> sorted(SETTINGS_GROUPS)[:4]
['baseline', 'battery', 'fall', 'fever']

The night (when leaving home is urgent) is 22:00-05:00 by default, and per elder
through ``{"geofence": {"night_start_h": 21.5, "night_end_h": 4.5}}``:

>>> safe_zones(ElderProfile(1, home=(34.867, 110.447)))[0].window
(22.0, 5.0)
>>> night_window(ElderProfile(1, thresholds={"geofence": {"night_end_h": 4.5}}))
(22.0, 4.5)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from alerts.baseline import BaselineSettings
from alerts.battery import BatterySettings, LowBatteryRule
from alerts.core import Rule
from alerts.device_offline import DeviceOfflineRule, OfflineSettings
from alerts.fall import FallRule, FallSettings
from alerts.fever import FeverRule, FeverSettings
from alerts.geofence import GeofenceRule, GeofenceSettings, Zone
from alerts.heart_rate import HeartRateSettings, heart_rate_rules
from alerts.inactivity import InactivityRule, InactivitySettings
from alerts.sos import SosRule
from alerts.vitals_rule import News2ParamRule, PartialNews2Rule, VitalsSettings
from alerts.wear import NotWornRule, WearSettings

SETTINGS_GROUPS: dict[str, type] = {
    "vitals": VitalsSettings,
    "heart_rate": HeartRateSettings,
    "baseline": BaselineSettings,
    "fall": FallSettings,
    "fever": FeverSettings,
    "geofence": GeofenceSettings,
    "inactivity": InactivitySettings,
    "offline": OfflineSettings,
    "not_worn": WearSettings,
    "battery": BatterySettings,
}
# Settings that are not a field of a dataclass but shape how one is built.
EXTRA_FIELDS: dict[str, dict[str, type]] = {
    "geofence": {"home_radius_m": float, "night_start_h": float, "night_end_h": float}
}
HOME_RADIUS_M = 150.0  # the home zone at night: the building and its courtyard
# Local hours when leaving home is urgent.  Not 21:00-06:00: early risers are out on
# their morning walk before 06:00 (wake times 04:48-07:30 in the simulated community:
# 36 "night" alarms at 05:xx in 600 elder-days), and 广场舞 and evening strolls run to
# about 21:30.  Night wandering is between midnight and 05:00.  Per elder: see above.
HOME_NIGHT = (22.0, 5.0)


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
    out: dict[str, type] = {}
    for f in dataclasses.fields(cls):
        t = (
            f.type
            if isinstance(f.type, type)
            else {"bool": bool, "int": int, "float": float, "str": str}.get(str(f.type))
        )
        if t in (bool, int, float, str):
            out[f.name] = t
    return out


def settings_for(group: str, profile: ElderProfile, **built: Any) -> Any:
    cls = SETTINGS_GROUPS[group]
    fields = scalar_fields(cls)
    overrides = {k: v for k, v in profile.thresholds.get(group, {}).items() if k in fields}
    return cls(**{**built, **overrides})


def night_window(profile: ElderProfile) -> tuple[float, float]:
    """The elder's night: ``HOME_NIGHT`` unless their thresholds say otherwise."""
    g = profile.thresholds.get("geofence", {})
    return (
        float(g.get("night_start_h", HOME_NIGHT[0])),
        float(g.get("night_end_h", HOME_NIGHT[1])),
    )


def safe_zones(profile: ElderProfile) -> tuple[Zone, ...]:
    """Home at night (leaving it then is urgent) and the community outline all day."""
    zones = []
    if profile.home is not None:
        radius = profile.thresholds.get("geofence", {}).get("home_radius_m", HOME_RADIUS_M)
        zones.append(
            Zone.circle("home", *profile.home, float(radius), window=night_window(profile))
        )
    if profile.community_outline:
        zones.append(Zone.polygon("community", profile.community_outline))
    return tuple(zones)


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
        FeverRule(settings_for("fever", profile)),
        InactivityRule(settings_for("inactivity", profile)),
        DeviceOfflineRule(
            settings_for("offline", profile, report_interval_s=float(profile.report_interval_s))
        ),
        NotWornRule(settings_for("not_worn", profile)),
        LowBatteryRule(settings_for("battery", profile)),
    ]
    zones = safe_zones(profile)
    if zones:
        night = night_window(profile)  # exits then are HIGH: the same night as home's
        rules.append(GeofenceRule(settings_for("geofence", profile, zones=zones, night=night)))
    return rules
