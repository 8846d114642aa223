"""Geofence exit: the elder has left a safe zone, judged on fixes that say so for sure.

Zones are per elder: circles (home, 150 m) and polygons (the community outline),
each with an optional local-time window -- "home, 22:00-05:00" makes leaving home
at night an alarm while daytime walks inside the community are not.  Every zone
active at the time of a fix must hold (the elder must be inside each of them).

Flapping on GPS drift is the failure users of other systems complain about most, so
an exit has to be beyond doubt:

- **Accuracy.**  A fix counts as outside only when its accuracy circle lies wholly
  outside the zone, with room to spare: outside by more than
  ``acc_factor * acc + exit_margin_m``.  ``acc`` is a 68 % radius (Android's and
  most chipsets' definition), so 1.6 x acc holds the true position ~95 % of the time.
- **Confirmation.**  ``confirm_fixes`` (2) consecutive outside fixes.  Optionally
  ``confirm_s``: one outside fix not contradicted for that long (off by default:
  it makes the outcome depend on the reporting rate -- a device that reports
  every 10 minutes lets one stray fix stand for 10 minutes).
- **Hysteresis.**  Back inside only when the fix is ``reenter_margin_m`` inside the
  zone; in between (the band around the boundary) nothing changes.
- **Return.**  And back only once the elder has *stayed* that far inside for
  ``return_minutes`` (every fix meanwhile past the margin): a wanderer whose
  route passes her own door at 3 am is not home.  (Seen in the simulated
  community: the route back within the home radius for a minute cleared a night
  exit, and the community exit that followed seven minutes later was swallowed by
  the alert's cooldown; she was 936 m out before anyone heard again.)
- **Sources.**  Cell-tower (``lbs``) fixes and fixes worse than ``max_acc_m`` are
  ignored: they are often hundreds of metres, sometimes kilometres, off.
- **Jumps.**  A fix that would mean moving faster than ``max_speed_mps`` (brisk
  walking) from the last accepted fix, even allowing for both fixes' accuracy, is
  held as *suspect*.  The next fix decides: if it is plausible from the last
  accepted fix the suspect was a jump and is dropped (``detail["jumps_filtered"]``);
  if it is plausible from the suspect, or closer to it than to the last accepted
  fix (the elder is on a bus), both are accepted in order.  This also stops one
  stray fix near home from clearing a real exit.

An exit confirmed while a zone is active stays open until the elder is back inside
that zone, even if its window has ended meanwhile: a night wander does not end by
itself at 05:00.  One episode across zones: leaving home and then the community
is one alert, updated (a ``reraise`` naming the new zone) when another zone is
left, CLEARed only when she is back in every zone she left.  Severity: HIGH when
it happens in the ``night`` window, else MEDIUM, escalated to HIGH if night falls
while still outside.  One RAISE, a reminder every ``reraise_minutes`` while fixes
still show the elder outside, CLEAR on return.  Value: metres outside the zone.

>>> from datetime import datetime, timedelta, timezone
>>> from alerts.geometry import offset
>>> from protocol.messages import Position
>>> home = Zone.circle("家", 34.867, 110.447, 150.0)
>>> rule = GeofenceRule(GeofenceSettings(zones=(home,)))
>>> t0 = datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc)  # 22:00 local
>>> found = []
>>> for i, east in enumerate([0, 30, 60, 90, 120, 150, 180, 210, 240, 270]):
...     lat, lon = offset(34.867, 110.447, east * 1.5, 0.0)
...     found += rule.update(Position("w1", i, t0 + timedelta(minutes=i), lat, lon, 8.0, "gps"))
>>> [(f.severity.value, f.message) for f in found]
[('high', '离开安全区域「家」120 米（夜间）')]
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from alerts.geometry import circle_signed_distance_m, haversine_m, polygon_signed_distance_m
from alerts.local_time import Window, in_window
from protocol.messages import Position, Reading


@dataclass(frozen=True, slots=True)
class Zone:
    """A safe zone: a circle (centre, radius) or a polygon ring of ``(lon, lat)``."""

    name: str
    lat: float | None = None  # circle centre
    lon: float | None = None
    radius_m: float | None = None
    ring: tuple[tuple[float, float], ...] | None = None  # polygon, GeoJSON order
    window: Window | None = None  # local hours when the zone applies; None: always

    def __post_init__(self) -> None:
        circle = self.lat is not None and self.lon is not None and self.radius_m is not None
        if circle == (self.ring is not None):
            raise ValueError(f"zone {self.name!r}: give either a circle or a ring")
        if self.ring is not None and len({tuple(p) for p in self.ring}) < 3:
            raise ValueError(f"zone {self.name!r}: a ring needs three distinct vertices")

    @classmethod
    def circle(
        cls, name: str, lat: float, lon: float, radius_m: float, window: Window | None = None
    ) -> Zone:
        return cls(name, lat=lat, lon=lon, radius_m=radius_m, window=window)

    @classmethod
    def polygon(
        cls, name: str, ring: Sequence[Sequence[float]], window: Window | None = None
    ) -> Zone:
        return cls(name, ring=tuple((float(p[0]), float(p[1])) for p in ring), window=window)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Zone:
        """From stored JSON: ``{"name", "circle": {"lat", "lon", "radius_m"} | "polygon":
        [[lon, lat], ...], "window": ["21:00", "06:00"] | [21, 6] | null}``.

        >>> Zone.from_dict({"name": "家", "circle": {"lat": 34.9, "lon": 110.4, "radius_m": 150},
        ...                 "window": ["21:00", "06:30"]}).window
        (21.0, 6.5)
        """
        w = d.get("window")
        window = None if w is None else (_hours(w[0]), _hours(w[1]))
        if "circle" in d:
            c = d["circle"]
            return cls.circle(d["name"], c["lat"], c["lon"], c["radius_m"], window)
        return cls.polygon(d["name"], d["polygon"], window)

    def signed_distance_m(self, lat: float, lon: float) -> float:
        """Metres outside the zone's edge (negative: that deep inside)."""
        if self.ring is not None:
            return polygon_signed_distance_m(lat, lon, self.ring)
        assert self.lat is not None and self.lon is not None and self.radius_m is not None
        return circle_signed_distance_m(lat, lon, self.lat, self.lon, self.radius_m)


def _hours(v: float | str) -> float:
    if isinstance(v, str):
        hh, _, mm = v.partition(":")
        return int(hh) + int(mm or 0) / 60
    return float(v)


@dataclass(frozen=True, slots=True)
class GeofenceSettings:
    """Per-elder geofence settings."""

    zones: tuple[Zone, ...] = ()
    acc_factor: float = 1.6  # x acc: the ~95 % circle of a fix
    exit_margin_m: float = 20.0  # beyond the accuracy circle, to count as outside
    reenter_margin_m: float = 20.0  # this deep inside to count as back...
    return_minutes: float = 10.0  # ...for this long (0: at the first such fix)
    confirm_fixes: int = 2  # consecutive outside fixes that confirm an exit
    confirm_s: float | None = None  # or one outside fix standing this long (see above)
    max_acc_m: float = 200.0  # worse fixes are ignored
    sources: tuple[str, ...] = ("gps", "wifi", "beacon")  # lbs: too coarse to judge
    max_speed_mps: float = 3.0  # faster than a brisk walk from the last fix: suspect
    night: Window | None = (22.0, 5.0)  # exits in this local window are HIGH
    utc_offset_hours: float = 8.0  # Asia/Shanghai
    reraise_minutes: float | None = 30.0


def _zone_key(zone: Zone) -> str:
    return hashlib.sha1(repr(zone).encode(), usedforsecurity=False).hexdigest()[:16]


def _zone_state(zone: Zone) -> dict[str, Any]:
    return {
        "key": _zone_key(zone),
        "out": False,
        "run": 0,
        "run_t0": None,
        "dist": None,
        "in_since": None,  # while out: inside past the re-entry margin since then
    }


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class GeofenceRule:
    """One elder's geofence rule (kind ``geofence_exit``; HIGH at night, else MEDIUM)."""

    kind = "geofence_exit"

    def __init__(self, settings: GeofenceSettings | None = None) -> None:
        self.settings = settings or GeofenceSettings()
        self._st: dict[str, Any] = {
            "last_ok": None,  # [t, lat, lon, acc] last accepted fix
            "suspect": None,  # [t, lat, lon, acc] a fix held until the next one decides
            "jumps": 0,  # suspects dropped as jumps
            # Per zone: confirmed outside, and the current run of outside fixes.
            "zones": [_zone_state(z) for z in self.settings.zones],
            "open": None,  # {"t0", "last_raise", "severity", "zone", "zones"}
        }

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        if not isinstance(reading, Position):
            return []
        t = reading.ts.timestamp()
        out = self._timeouts(t)
        s = self.settings
        if reading.src not in s.sources or reading.acc > s.max_acc_m:
            return out
        for fix in self._filter([t, reading.lat, reading.lon, reading.acc]):
            out += self._on_fix(fix)
        return out

    def advance(self, now: datetime) -> list[Finding]:
        return self._timeouts(now.timestamp())

    def snapshot(self) -> dict[str, Any]:
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        """Load a snapshot.  Zones are matched by content, so a state saved before an
        administrator redrew the zones restores the unchanged ones and starts the
        new or changed ones afresh (an episode whose zone is gone clears on the next fix).
        """
        st = _copied(state)
        saved = {z["key"]: z for z in st["zones"]}
        st["zones"] = [dict(saved.get(_zone_key(z)) or _zone_state(z)) for z in self.settings.zones]
        self._st = st

    # --- jumps ----------------------------------------------------------------------

    def _plausible(self, a: list[float], b: list[float]) -> bool:
        d = haversine_m(a[1], a[2], b[1], b[2]) - a[3] - b[3]
        return d <= self.settings.max_speed_mps * max(b[0] - a[0], 1.0)

    def _filter(self, fix: list[float]) -> list[list[float]]:
        """The fixes this one lets through, in order: none, itself, or suspect + itself."""
        st = self._st
        last, sus = st["last_ok"], st["suspect"]
        if last is not None and fix[0] < last[0]:
            return []  # older than the last accepted fix: ordering is the shell's job
        if last is None or self._plausible(last, fix):
            if sus is not None:
                st["jumps"] += 1
            st["last_ok"], st["suspect"] = fix, None
            return [fix]
        if sus is not None:
            confirmed = self._plausible(sus, fix) or haversine_m(
                sus[1], sus[2], fix[1], fix[2]
            ) < haversine_m(last[1], last[2], fix[1], fix[2])
            if confirmed:
                st["last_ok"], st["suspect"] = fix, None
                return [sus, fix]
            st["jumps"] += 1
        st["suspect"] = fix
        return []

    # --- zones ----------------------------------------------------------------------

    def _active(self, zone: Zone, t: float) -> bool:
        return in_window(t, zone.window, self.settings.utc_offset_hours)

    def _on_fix(self, fix: list[float]) -> list[Finding]:
        s = self.settings
        t, lat, lon, acc = fix
        for zone, zs in zip(s.zones, self._st["zones"], strict=True):
            d = zone.signed_distance_m(lat, lon)
            zs["dist"] = d
            if zs["out"]:
                if -d < s.reenter_margin_m:
                    zs["in_since"] = None
                else:
                    if zs.get("in_since") is None:
                        zs["in_since"] = t
                    if t - zs["in_since"] >= s.return_minutes * 60:  # stayed: back
                        zs["out"], zs["in_since"] = False, None
            elif self._active(zone, t) and d > s.acc_factor * acc + s.exit_margin_m:
                zs["run"] += 1
                if zs["run_t0"] is None:
                    zs["run_t0"] = t
                if zs["run"] >= s.confirm_fixes:
                    zs["out"], zs["run"], zs["run_t0"] = True, 0, None
            else:
                zs["run"], zs["run_t0"] = 0, None
        return self._episode(t, fix)

    def _timeouts(self, now: float) -> list[Finding]:
        """The optional "one outside fix standing ``confirm_s``" confirmation."""
        s = self.settings
        if s.confirm_s is None:
            return []
        due: float | None = None
        for zs in self._st["zones"]:
            t0 = zs["run_t0"]
            if not zs["out"] and t0 is not None and t0 + s.confirm_s <= now:
                zs["out"], zs["run"], zs["run_t0"] = True, 0, None
                due = t0 + s.confirm_s if due is None else min(due, t0 + s.confirm_s)
        return [] if due is None else self._episode(due, None)

    # --- the episode ----------------------------------------------------------------

    def _episode(self, t: float, fix: list[float] | None) -> list[Finding]:
        s, st = self.settings, self._st
        out = [
            (zs["dist"], zone) for zone, zs in zip(s.zones, st["zones"], strict=True) if zs["out"]
        ]
        ep = st["open"]
        if not out:
            if ep is None:
                return []
            st["open"] = None
            back = ep.get("zones") or [ep["zone"]]
            return [self._finding(t, "clear", Severity(ep["severity"]), ep["zone"], 0.0, fix, back)]
        dist, zone = max(out, key=lambda x: x[0])
        dist = max(dist, 0.0)
        names = [z.name for _, z in out]
        severity = Severity.HIGH if in_window(t, s.night, s.utc_offset_hours) else Severity.MEDIUM
        left = [] if ep is None else [n for n in names if n not in ep.get("zones", names)]
        if ep is None:
            episode = "open"
        elif _RANK[severity] > _RANK[Severity(ep["severity"])]:
            episode = "escalate"
        elif left:  # one episode across zones: say so when she leaves another one
            episode = "reraise"
            severity = Severity(ep["severity"])
            dist, zone = next((max(d, 0.0), z) for d, z in out if z.name == left[0])
        elif (
            fix is not None
            and s.reraise_minutes is not None
            and t - ep["last_raise"] >= s.reraise_minutes * 60
            and any(d > 0 and self._active(z, t) for d, z in out)  # still outside
        ):
            episode = "reraise"
            severity = Severity(ep["severity"])
        else:
            return []
        st["open"] = {
            "t0": t if ep is None else ep["t0"],
            "last_raise": t,
            "severity": severity.value,
            "zone": zone.name,
            "zones": sorted(set(names) | set(() if ep is None else ep.get("zones", ()))),
        }
        return [self._finding(t, episode, severity, zone.name, dist, fix, st["open"]["zones"])]

    def _finding(
        self,
        t: float,
        episode: str,
        severity: Severity,
        zone: str,
        dist: float,
        fix: list[float] | None,
        zones: list[str],
    ) -> Finding:
        night = severity == Severity.HIGH
        if episode == "clear":
            named = "".join(f"「{z}」" for z in zones)
            message, action = f"已返回安全区域{named}", Action.CLEAR
        else:
            suffix = "（夜间）" if night else ""
            message, action = f"离开安全区域「{zone}」{dist:.0f} 米{suffix}", Action.RAISE
        detail: dict[str, Any] = {
            "episode": episode,
            "zone": zone,
            "zones": list(zones),  # every zone this episode has left
            "distance_m": round(dist, 1),
            "night": night,
            "jumps_filtered": self._st["jumps"],
        }
        if fix is not None:
            detail.update(lat=fix[1], lon=fix[2], acc=fix[3])
        return Finding(
            kind=self.kind,
            severity=severity,
            ts=datetime.fromtimestamp(t, UTC),
            message=message,
            action=action,
            value=round(dist, 1),
            detail=detail,
        )


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
