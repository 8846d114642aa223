"""Low battery, with an estimate of the time left.

An episode opens when the reported level reaches ``low_pct`` (or the device sends
its own ``low_battery`` event) and says how long the device will last at its
recent drain rate, so staff know whether "charge it tonight" or "call now" is the
answer: ``电量 12%，约 5 小时后耗尽``.  One RAISE per episode, never one per sample;
CLEAR once the battery has been charged back to ``clear_pct``.

The drain rate is a Theil-Sen slope (the median of pairwise slopes) over the last
``window_hours`` of the current discharge.  Battery levels come in whole percent
steps, so only pairs at least ``min_pair_minutes`` apart are used: two samples a
minute apart on the same step say "no drain" and would drag the median to zero.
A rise of ``charge_rise_pct`` above the discharge's lowest level is charging: the
history restarts there, so a charge never reads as a negative drain.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> t0 = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
>>> rule, found = LowBatteryRule(), []
>>> for m in range(0, 600, 5):  # 40 % falling 3 % per hour, reported in whole percent
...     v = Vitals("w1", m, t0 + timedelta(minutes=m), battery=float(int(40 - 3 * m / 60)))
...     found += rule.update(v)
>>> [(f.message, f.detail["hours_to_empty"]) for f in found]
[('电量 15%，约 5 小时后耗尽', 5.0)]
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from protocol.messages import Event, Reading, Vitals


@dataclass(frozen=True, slots=True)
class BatterySettings:
    """Per-device low-battery settings."""

    low_pct: float = 15.0  # at or below: low
    clear_pct: float = 30.0  # charged back to this: the episode is over
    window_hours: float = 3.0  # drain rate from this much recent discharge
    min_pair_minutes: float = 30.0  # shortest pair the slope uses (whole-percent steps)
    thin_minutes: float = 5.0  # keep at most one sample per this long
    charge_rise_pct: float = 2.0  # this far above the discharge's low: charging
    min_drain_pct_per_h: float = 0.1  # slower than this: no estimate (idle or unknown)


def theil_sen_slope(points: list[list[float]], min_dt: float) -> float | None:
    """Median slope over pairs of ``[t, y]`` points at least ``min_dt`` apart.

    >>> theil_sen_slope([[0, 10], [1, 9], [2, 8], [3, 0], [4, 6]], 1)  # one wild point
    -1.0
    """
    slopes = sorted(
        (b[1] - a[1]) / (b[0] - a[0])
        for i, a in enumerate(points)
        for b in points[i + 1 :]
        if b[0] - a[0] >= min_dt
    )
    n = len(slopes)
    if n == 0:
        return None
    return slopes[n // 2] if n % 2 else (slopes[n // 2 - 1] + slopes[n // 2]) / 2


class LowBatteryRule:
    """One device's low-battery rule (kind ``low_battery``, LOW)."""

    kind = "low_battery"

    def __init__(self, settings: BatterySettings | None = None) -> None:
        self.settings = settings or BatterySettings()
        self._st: dict[str, Any] = {
            "history": [],  # [t, pct] of the current discharge, thinned
            "low": None,  # lowest level of the current discharge
            "last": None,  # [t, pct] latest reading
            "open": None,  # {"t0", "charged"} of the open episode
        }

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        if isinstance(reading, Event) and reading.type == "low_battery":
            return self._open(reading.ts.timestamp(), "device_event")
        if not isinstance(reading, Vitals) or reading.battery is None:
            return []
        t, pct = reading.ts.timestamp(), float(reading.battery)
        st, s = self._st, self.settings
        if st["last"] is not None and t < st["last"][0]:
            return []  # older than what we know (ordering is the shell's job)
        st["last"] = [t, pct]
        if st["low"] is not None and pct >= st["low"] + s.charge_rise_pct:
            st["history"], st["low"] = [], None  # charging: a new discharge starts
            if st["open"] is not None:
                st["open"]["charged"] = True
        self._remember(t, pct)
        ep = st["open"]
        if ep is not None and ep["charged"] and pct >= s.clear_pct:
            st["open"] = None
            return [
                Finding(
                    kind=self.kind,
                    severity=Severity.LOW,
                    ts=reading.ts,
                    message=f"电量已充至 {pct:.0f}%",
                    action=Action.CLEAR,
                    value=pct,
                    detail={"episode": "clear", "battery": pct},
                )
            ]
        if pct <= s.low_pct:
            return self._open(t, "level")
        return []

    def advance(self, now: datetime) -> list[Finding]:
        return []  # a battery only speaks through its readings

    def snapshot(self) -> dict[str, Any]:
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = _copied(state)

    # --- internals ------------------------------------------------------------------

    def _remember(self, t: float, pct: float) -> None:
        st, s = self._st, self.settings
        hist = st["history"]
        st["low"] = pct if st["low"] is None else min(st["low"], pct)
        if hist and t - hist[-1][0] < s.thin_minutes * 60:
            return
        hist.append([t, pct])
        horizon = t - s.window_hours * 3600
        while hist and hist[0][0] < horizon:
            hist.pop(0)

    def drain_pct_per_hour(self) -> float | None:
        """Recent drain in % per hour (positive when discharging), or None if unknown."""
        s = self.settings
        slope = theil_sen_slope(self._st["history"], s.min_pair_minutes * 60)
        if slope is None:
            return None
        drain = -slope * 3600
        return drain if drain >= s.min_drain_pct_per_h else None

    def _open(self, t: float, reason: str) -> list[Finding]:
        st = self._st
        if st["open"] is not None:
            return []
        st["open"] = {"t0": t, "charged": False}
        last = st["last"]
        pct = None if last is None else last[1]
        drain = self.drain_pct_per_hour()
        hours = None if drain is None or pct is None else pct / drain
        if reason == "level":
            message = f"电量 {pct:.0f}%"
        else:
            message = "设备报告电量低" + ("" if pct is None else f"（最近电量 {pct:.0f}%）")
        if hours is not None:
            message += (
                f"，约 {hours:.0f} 小时后耗尽"
                if hours >= 1
                else f"，约 {hours * 60:.0f} 分钟后耗尽"
            )
        return [
            Finding(
                kind=self.kind,
                severity=Severity.LOW,
                ts=datetime.fromtimestamp(t, UTC),
                message=message,
                value=pct,
                detail={
                    "episode": "open",
                    "reason": reason,
                    "battery": pct,
                    "drain_pct_per_hour": None if drain is None else round(drain, 2),
                    "hours_to_empty": None if hours is None else round(hours, 1),
                },
            )
        ]


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
