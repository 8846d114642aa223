"""Inactivity: no steps and no movement for too long in the daytime.

An elder who lives alone and has not taken a step for four daytime hours may be
lying on the floor.  Why four: an ordinary day includes long stillness -- sitting
a couple of hours, then a nap -- and in the simulated community 11 % of ordinary
elder-days hold a daytime stretch of 3 h without a step, 2 % one of 4 h, 0.4 %
one of 5 h (200 elders x 3 days x 5 seeds).  At 3 h the rule raised 62 false
alarms in 600 elder-days; at 4 h it is about one elder-day in fifty, and each
elder can be set apart (``threshold_minutes``).  *Moving* is either

- ``min_steps`` steps added to the cumulative "steps today" counter since the last
  movement (a few phantom steps from arm gestures are not a walk).  The counter
  resets at local midnight (or on a device reboot): a count that goes down is a
  reset, and its new value is the steps taken since, so neither the reset nor a
  small post-midnight count is mistaken for anything else; or
- two consecutive position fixes farther from the anchor fix (where the elder was
  last seen moving) than ``move_m`` *and* than the fixes' own noise
  (``move_sigmas`` standard deviations of the difference of two fixes, ``acc``
  being a 68 % radius).  Indoor wifi fixes with ``acc`` 40 m scatter by more than
  50 m; one stray fix must not "move" an elder who is lying still.  Fixes are
  compared only with an anchor from the same source: an outdoor GPS fix at the
  building's door and the indoor wifi fixes that follow it are two positioning
  systems whose errors are not one Gaussian (wifi positions come from an access
  point database, biased by tens of metres), so a change of source re-anchors
  and is no movement -- the walk that went with it showed in the steps anyway.
  The anchor is not one fix but the inverse-variance mean of the fixes since
  that agreed with it, so one fix that happened to land 50 m off does not become
  the reference every later fix is "far" from.  Cell-tower (``lbs``) fixes and
  fixes worse than ``max_acc_m`` say nothing.

**Per elder.**  Some elders sit longer than others: ``threshold_minutes`` is set
per elder.  It is not learnt here from the elder's own quiet days: a stillness
long enough to matter raises an alarm, and a day that alarmed must not teach the
rule what is ordinary (it may have been the incident) -- so learning from the
rule's own history could move the threshold by no more than a margin.  What
would teach it is the staff's verdict on each alarm (resolved as a false alarm),
and that lives in the alert store, not in a rule.

Only daytime counts (default 08:00-20:00 local), and only one day's window: at the
earliest 12:00 for an elder who sleeps in (``local_time.first_due``).  Only while
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
>>> for m in range(0, 260, 5):
...     found += rule.update(Vitals("w1", m, t0 + timedelta(minutes=m), steps=812, worn=True))
>>> found += rule.update(Vitals("w1", 999, t0 + timedelta(minutes=261), steps=850))
>>> [(f.action.value, f.ts.hour, f.message) for f in found]
[('raise', 4, '已 4.0 小时无活动（无步数、位置未变）'), ('clear', 4, '已恢复活动')]
"""

from __future__ import annotations

import math
import pickle
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

    threshold_minutes: float = 240.0  # daytime minutes without movement
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
            "anchor": None,  # [lat, lon, acc, src]: mean of the fixes since last seen moving
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
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = _copied(state)

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
        here = [fix.lat, fix.lon, fix.acc, fix.src]
        anchor = st["anchor"]
        if anchor is None or anchor[3:] != [fix.src]:  # another positioning system
            st["anchor"], st["away"] = here, False
            return False
        noise = s.move_sigmas * math.hypot(anchor[2], fix.acc) * ACC_TO_SIGMA
        far = haversine_m(anchor[0], anchor[1], fix.lat, fix.lon) > max(s.move_m, noise)
        if far and st["away"]:  # two in a row: a walk, not one stray fix
            st["anchor"], st["away"] = here, False
            return True
        st["away"] = far
        if not far:  # the same place: a better estimate of where it is
            st["anchor"] = _merge(anchor, here)
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
            if now < since + s.threshold_minutes * 60:
                return []  # ``first_due`` is never before ``since + hold``: not yet due
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
            detail={
                "episode": episode,
                "still_since": _dt(self._st["since"]).isoformat(),
                "threshold_minutes": self.settings.threshold_minutes,
            },
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


def _merge(anchor: list[Any], fix: list[Any]) -> list[Any]:
    """Inverse-variance mean of the anchor and a fix of the same place and source.

    >>> _merge([34.0, 110.0, 30.0, "wifi"], [34.001, 110.0, 30.0, "wifi"])
    [34.0005, 110.0, 21.2, 'wifi']
    """
    wa, wf = anchor[2] ** -2, fix[2] ** -2
    lat = (wa * anchor[0] + wf * fix[0]) / (wa + wf)
    lon = (wa * anchor[1] + wf * fix[1]) / (wa + wf)
    return [round(lat, 7), round(lon, 7), round((wa + wf) ** -0.5, 1), anchor[3]]


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
