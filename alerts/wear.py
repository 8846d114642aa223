"""Not worn: the device has been off the wrist for too long during the day.

Off the wrist means a ``worn: false`` sample or an ``off_wrist`` event; back on
means ``worn: true`` or ``on_wrist``.  Only daytime counts (default 08:00-21:00
local): a watch on the charger overnight is normal, and one taken off at 20:45 is
due at 08:30 next morning, not at 21:15 (``local_time.first_due``).  The finding
is stamped with the instant it fell due, whatever the engine's ``advance`` tick.

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

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from alerts.device_offline import is_device_message
from alerts.local_time import Window, first_due, in_window
from alerts.vitals_rule import worn_change
from protocol.messages import Reading


@dataclass(frozen=True, slots=True)
class WearSettings:
    """Per-elder not-worn settings."""

    off_minutes: float = 30.0  # daytime minutes off the wrist before it is raised
    daytime: Window | None = (8.0, 21.0)  # local hours that count; None: all day
    utc_offset_hours: float = 8.0  # Asia/Shanghai
    stale_minutes: float = 15.0  # no message this long: the device is silent, not unworn
    reraise_minutes: float | None = 120.0


class NotWornRule:
    """One elder's not-worn rule (kind ``not_worn``, LOW)."""

    kind = "not_worn"

    def __init__(self, settings: WearSettings | None = None) -> None:
        self.settings = settings or WearSettings()
        self._st: dict[str, Any] = {
            "off_since": None,  # when it came off the wrist (None: worn or unknown)
            "last_data": None,  # latest message from the device
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
            st["off_since"] = None
            if st["open"] is not None:
                out.append(self._clear(t))
        elif worn is False and st["off_since"] is None:
            st["off_since"] = t
        return out + self._check(t)

    def advance(self, now: datetime) -> list[Finding]:
        return self._check(now.timestamp())

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = copy.deepcopy(state)

    # --- internals ------------------------------------------------------------------

    def _check(self, now: float) -> list[Finding]:
        st, s = self._st, self.settings
        since, last = st["off_since"], st["last_data"]
        if since is None or last is None:
            return []
        stale = s.stale_minutes * 60
        ep = st["open"]
        if ep is None:
            due = first_due(
                since, s.off_minutes * 60, s.daytime, s.utc_offset_hours, not_before=last
            )
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
        minutes = (t - self._st["off_since"]) / 60
        return Finding(
            kind=self.kind,
            severity=Severity.LOW,
            ts=_dt(t),
            message=f"设备未佩戴已 {minutes:.0f} 分钟",
            value=round(minutes, 1),
            detail={"episode": episode, "off_since": _dt(self._st["off_since"]).isoformat()},
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
