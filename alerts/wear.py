"""Not worn: the device has been off the wrist for too long during the day.

Off the wrist means a ``worn: false`` sample or an ``off_wrist`` event; back on
means ``worn: true`` or ``on_wrist``.  Only daytime counts (default 08:00-20:00
local): a watch taken off at 19:45 is due at 08:30 next morning if it is still
off then, not at 20:15 (``local_time.first_due``).  The evening is when watches
go on the charger and elders wash and go to bed -- in the simulated community
every not-worn alarm between 19:00 and 21:00 was the evening charge -- so a
reminder then says nothing staff can act on.  The finding is stamped with the
instant it fell due, whatever the engine's ``advance`` tick.

**On the charger.**  A watch charging is not an elder who has stopped wearing
it.  Charging is evident when the battery, while off the wrist, rises
``charge_rise_pct`` above its lowest level since it came off (3 %: a discharging
gauge jitters by a percent either way, no more).  While it keeps rising -- a
rise within ``charge_quiet_minutes`` -- or stands at ``full_pct`` (a full watch
left on its charger), the time is not counted.  Once the rises stop below full
the watch has left the charger: the off-wrist time is counted from the last
rise.  A watch left on the charger is still not being worn, though: after
``charge_max_minutes`` off the wrist (daytime) it is raised all the same,
charging or not.

The rule fires only while the device is talking (a message within
``stale_minutes``): a silent device is ``device_offline``'s business, and one
cause should not raise two alerts.  While off the wrist the vital-sign rules
ignore samples themselves (``vitals_rule.worn_change``), so this is the one alert
that says why the live vitals went blank.

LOW; one RAISE, a reminder every ``reraise_minutes`` in daytime, CLEAR when back on.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Event, Vitals
>>> t0 = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)  # 10:00 local
>>> rule = NotWornRule()
>>> found = rule.update(Event("w1", 1, t0, "off_wrist"))
>>> for m in range(1, 40):
...     found += rule.update(Vitals("w1", m + 1, t0 + timedelta(minutes=m), worn=False))
>>> found += rule.update(Event("w1", 99, t0 + timedelta(minutes=41), "on_wrist"))
>>> [(f.action.value, f.message) for f in found]
[('raise', '设备未佩戴已 30 分钟'), ('clear', '设备已重新佩戴')]
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from alerts.device_offline import is_device_message
from alerts.local_time import Window, first_due, in_window
from alerts.vitals_rule import worn_change
from protocol.messages import Reading, Vitals


@dataclass(frozen=True, slots=True)
class WearSettings:
    """Per-elder not-worn settings."""

    off_minutes: float = 30.0  # daytime minutes off the wrist before it is raised
    daytime: Window | None = (8.0, 20.0)  # local hours that count; None: all day
    utc_offset_hours: float = 8.0  # Asia/Shanghai
    stale_minutes: float = 15.0  # no message this long: the device is silent, not unworn
    reraise_minutes: float | None = 120.0
    charge_rise_pct: float = 3.0  # above its low while off: charging (gauges jitter +-1 %)
    charge_quiet_minutes: float = 20.0  # no rise for this long below full: off the charger
    full_pct: float = 98.0  # at or above: full, still on the charger
    charge_max_minutes: float = 180.0  # daytime minutes off the wrist, charging or not


class NotWornRule:
    """One elder's not-worn rule (kind ``not_worn``, LOW)."""

    kind = "not_worn"

    def __init__(self, settings: WearSettings | None = None) -> None:
        self.settings = settings or WearSettings()
        self._st: dict[str, Any] = {
            "off_since": None,  # when it came off the wrist (None: worn or unknown)
            "count_from": None,  # off-wrist time counts from here (after a charge: its end)
            "last_data": None,  # latest message from the device
            "batt_low": None,  # lowest battery level since off the wrist (or since a charge)
            "charge": None,  # {"t0", "last_rise", "peak"}: on the charger since t0
            "open": None,  # {"t0", "last_raise"} of the open episode
        }

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        if not is_device_message(reading):
            return []
        t = reading.ts.timestamp()
        out = self._check(t)
        st = self._st
        st["last_data"] = t if st["last_data"] is None else max(st["last_data"], t)
        worn = worn_change(reading)
        if worn is True:
            st["off_since"] = st["count_from"] = st["batt_low"] = st["charge"] = None
            if st["open"] is not None:
                out.append(self._clear(t))
        elif worn is False and st["off_since"] is None:
            st["off_since"] = st["count_from"] = t
        if st["off_since"] is not None and isinstance(reading, Vitals):
            self._battery(t, reading.battery)
        return out + self._check(t)

    def advance(self, now: datetime) -> list[Finding]:
        return self._check(now.timestamp())

    def snapshot(self) -> dict[str, Any]:
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = _copied(state)

    # --- the charger ----------------------------------------------------------------

    def _battery(self, t: float, pct: float | None) -> None:
        """Follow the battery while off the wrist: is the watch on its charger?"""
        if pct is None:
            return
        st, s = self._st, self.settings
        ch = st["charge"]
        if ch is None:
            low = st["batt_low"]
            if low is not None and pct - low >= s.charge_rise_pct:
                st["charge"] = {"t0": t, "last_rise": t, "peak": pct}
            else:
                st["batt_low"] = pct if low is None else min(low, pct)
            return
        if pct > ch["peak"] or (pct >= s.full_pct and pct >= ch["peak"]):
            ch["peak"], ch["last_rise"] = max(pct, ch["peak"]), t
        elif pct <= ch["peak"] - s.charge_rise_pct:  # draining again: off the charger
            st["count_from"] = max(st["count_from"], ch["last_rise"])
            st["charge"], st["batt_low"] = None, pct

    def _on_charger(self, t: float) -> bool:
        """Whether the watch is, as far as the battery shows, on its charger at ``t``."""
        s, ch = self.settings, self._st["charge"]
        if ch is None:
            return False
        return bool(ch["peak"] >= s.full_pct or t - ch["last_rise"] <= s.charge_quiet_minutes * 60)

    def _due(self, last: float) -> float | None:
        """When the off-wrist time falls due (None: not within the coming windows)."""
        st, s = self._st, self.settings
        w, off = s.daytime, s.utc_offset_hours
        ch = st["charge"]
        if ch is None:
            return first_due(st["count_from"], s.off_minutes * 60, w, off, not_before=last)
        # On the charger: the time is not counted while it charges, but only so long.
        capped = first_due(st["off_since"], s.charge_max_minutes * 60, w, off, not_before=last)
        if ch["peak"] >= s.full_pct:
            return capped
        # Below full, charging shows in rises: once they stop, it has left the charger.
        left = ch["last_rise"] + s.charge_quiet_minutes * 60
        since = max(st["count_from"], ch["last_rise"])
        due = first_due(since, s.off_minutes * 60, w, off, not_before=max(last, left))
        return capped if due is None else due if capped is None else min(due, capped)

    # --- internals ------------------------------------------------------------------

    def _check(self, now: float) -> list[Finding]:
        st, s = self._st, self.settings
        since, last = st["off_since"], st["last_data"]
        if since is None or last is None:
            return []
        stale = s.stale_minutes * 60
        ep = st["open"]
        if ep is None:
            due = self._due(last)
            if due is None or due > now or due - last > stale:
                return []
            st["open"] = {"t0": due, "last_raise": due}
            return [self._raise(due, "open")]
        if (
            s.reraise_minutes is None
            or now - ep["last_raise"] < s.reraise_minutes * 60
            or now - last > stale
            or not in_window(now, s.daytime, s.utc_offset_hours)
        ):
            return []
        ep["last_raise"] = now
        return [self._raise(now, "reraise")]

    def _raise(self, t: float, episode: str) -> Finding:
        st = self._st
        minutes = (t - st["off_since"]) / 60
        ch = st["charge"] if self._on_charger(t) else None
        return Finding(
            kind=self.kind,
            severity=Severity.LOW,
            ts=_dt(t),
            message=f"设备未佩戴已 {minutes:.0f} 分钟" + ("（在充电）" if ch else ""),
            value=round(minutes, 1),
            detail={
                "episode": episode,
                "off_since": _dt(st["off_since"]).isoformat(),
                "charging_since": None if ch is None else _dt(ch["t0"]).isoformat(),
            },
        )

    def _clear(self, t: float) -> Finding:
        ep = self._st["open"]
        self._st["open"] = None
        return Finding(
            kind=self.kind,
            severity=Severity.LOW,
            ts=_dt(t),
            message="设备已重新佩戴",
            action=Action.CLEAR,
            value=round((t - ep["t0"]) / 60, 1),
            detail={"episode": "clear"},
        )


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
