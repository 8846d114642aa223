"""Inactivity: no steps and no movement for too long in the daytime.

An elder who lives alone and has not taken a step for three daytime hours may be
lying on the floor.  *Moving* is either

- ``min_steps`` steps added to the cumulative "steps today" counter since the last
  movement (a few phantom steps from arm gestures are not a walk).  The counter
  resets at local midnight (or on a device reboot): a count that goes down is a
  reset, and its new value is the steps taken since, so neither the reset nor a
  small post-midnight count is mistaken for anything else; or
- two consecutive position fixes farther from the anchor fix (where the elder was
  last seen moving) than ``move_m`` *and* than the fixes' own noise
  (``move_sigmas`` standard deviations of the difference of two fixes, ``acc``
  being a 68 % radius).  Indoor wifi fixes with ``acc`` 40 m scatter by more than
  50 m; one stray fix must not "move" an elder who is lying still.  Cell-tower
  (``lbs``) fixes and fixes worse than ``max_acc_m`` say nothing either way.

Only daytime counts (default 08:00-20:00 local), and only one day's window: at the
earliest 11:00 for an elder who sleeps in (``local_time.first_due``).  Only while
worn (taking the watch off restarts the count when it is back on: the off-wrist
time is ``not_worn``'s business) and while the device is talking (a message within
``stale_minutes``; a silent device is ``device_offline``'s).  The finding carries
the instant it fell due, whatever the engine's tick, and a later reading after a
silent spell can still raise it when it shows the elder has not moved.

MEDIUM; one RAISE, a reminder every ``reraise_minutes`` in daytime, CLEAR on movement.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> t0 = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)  # 08:00 local
>>> rule, found = InactivityRule(), []
>>> for m in range(0, 200, 5):
...     found += rule.update(Vitals("w1", m, t0 + timedelta(minutes=m), steps=812, worn=True))
>>> found += rule.update(Vitals("w1", 999, t0 + timedelta(minutes=201), steps=850))
>>> [(f.action.value, f.ts.hour, f.message) for f in found]
[('raise', 3, '已 3.0 小时无活动（无步数、位置未变）'), ('clear', 3, '已恢复活动')]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from alerts.device_offline import is_device_message
from alerts.geometry import haversine_m
from alerts.local_time import Window, first_due, in_window
from alerts.vitals_rule import worn_change
from protocol.messages import Position, Reading, Vitals

ACC_TO_SIGMA = 1.0 / 1.5096  # acc is the 68 % radius of a 2-D Gaussian = 1.5096 sigma


@dataclass(frozen=True, slots=True)
class InactivitySettings:
    """Per-elder inactivity settings."""

    threshold_minutes: float = 180.0  # daytime minutes without movement
    daytime: Window | None = (8.0, 20.0)  # local hours that count; None: all day
    utc_offset_hours: float = 8.0  # Asia/Shanghai
    min_steps: int = 5  # steps since the last movement that count as moving
    move_m: float = 50.0  # displacement that counts as moving...
    move_sigmas: float = 3.0  # ...and that the fixes' own noise does not explain
    max_acc_m: float = 100.0  # worse fixes are ignored
    stale_minutes: float = 15.0  # no message this long: the device is silent
    reraise_minutes: float | None = 120.0  # an afternoon in the armchair: not 8 reminders


class InactivityRule:
    """One elder's inactivity rule (kind ``inactivity``, MEDIUM)."""

    kind = "inactivity"

    def __init__(self, settings: InactivitySettings | None = None) -> None:
        self.settings = settings or InactivitySettings()
        self._st: dict[str, Any] = {
            "since": None,  # still since (last movement, or put back on)
            "worn": True,
            "last_data": None,
            "steps": None,  # [t, count] of the latest step reading
            "steps_acc": 0,  # steps since the last movement
            "anchor": None,  # [lat, lon, acc] where last seen moving
            "away": False,  # the previous fix was away from the anchor
            "open": None,  # {"t0", "last_raise"}
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
        if worn is False:
            st["worn"], st["since"] = False, None
        elif worn is True and not st["worn"]:
            st["worn"], st["since"], st["steps_acc"] = True, t, 0
            st["anchor"], st["away"] = None, False
        if st["worn"] and st["since"] is None:
            st["since"] = t
        moved = False
        if isinstance(reading, Vitals) and reading.steps is not None:
            moved = self._steps(t, reading.steps)
        elif isinstance(reading, Position):
            moved = self._position(reading)
        if moved:
            st["steps_acc"] = 0
            if st["worn"]:
                st["since"] = t
            if st["open"] is not None:
                out.append(self._clear(t))
        return out + self._check(t)

    def advance(self, now: datetime) -> list[Finding]:
        return self._check(now.timestamp())

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = copy.deepcopy(state)

    # --- movement -------------------------------------------------------------------

    def _steps(self, t: float, count: int) -> bool:
        st = self._st
        prev = st["steps"]
        if prev is not None and t < prev[0]:
            return False  # older than what we know (ordering is the shell's job)
        st["steps"] = [t, count]
        if prev is None:
            return False
        # A count that went down was reset (local midnight, reboot): all of it is new.
        st["steps_acc"] += count - prev[1] if count >= prev[1] else count
        return bool(st["steps_acc"] >= self.settings.min_steps)

    def _position(self, fix: Position) -> bool:
        s, st = self.settings, self._st
        if fix.src == "lbs" or fix.acc > s.max_acc_m:
            return False
        here = [fix.lat, fix.lon, fix.acc]
        anchor = st["anchor"]
        if anchor is None:
            st["anchor"], st["away"] = here, False
            return False
        noise = s.move_sigmas * math.hypot(anchor[2], fix.acc) * ACC_TO_SIGMA
        far = haversine_m(anchor[0], anchor[1], fix.lat, fix.lon) > max(s.move_m, noise)
        if far and st["away"]:  # two in a row: a walk, not one stray fix
            st["anchor"], st["away"] = here, False
            return True
        st["away"] = far
        return False

    # --- time -----------------------------------------------------------------------

    def _check(self, now: float) -> list[Finding]:
        st, s = self._st, self.settings
        since, last = st["since"], st["last_data"]
        if since is None or last is None or not st["worn"]:
            return []
        stale = s.stale_minutes * 60
        ep = st["open"]
        if ep is None:
            due = first_due(
                since, s.threshold_minutes * 60, s.daytime, s.utc_offset_hours, not_before=last
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
        hours = (t - self._st["since"]) / 3600
        return Finding(
            kind=self.kind,
            severity=Severity.MEDIUM,
            ts=_dt(t),
            message=f"已 {hours:.1f} 小时无活动（无步数、位置未变）",
            value=round(hours, 2),
            detail={"episode": episode, "still_since": _dt(self._st["since"]).isoformat()},
        )

    def _clear(self, t: float) -> Finding:
        ep = self._st["open"]
        self._st["open"] = None
        return Finding(
            kind=self.kind,
            severity=Severity.MEDIUM,
            ts=_dt(t),
            message="已恢复活动",
            action=Action.CLEAR,
            value=round((t - ep["t0"]) / 3600, 2),
            detail={"episode": "clear"},
        )


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
