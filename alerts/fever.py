"""Fever: body temperature at or above 38 °C, sustained.

NEWS2 scores temperature at most 2 points (38.1-39.0 °C: 1, >= 39.1 °C: 2), below
the single-parameter trigger of 3, so a fever alone never raises a ``news2_temp``
alert and seldom tips the aggregate; yet for an elder living alone a fever of
38.5 °C that lasts the afternoon is what a caregiver should look in on.  This rule
says so on its own.

*Sustained* means two readings at or above ``fever_c`` at least
``sustain_minutes`` apart, with none below ``break_c`` between them and no gap
longer than ``max_gap_minutes`` between consecutive readings (a thermometer
reporting every 5 minutes or every hour both qualify; one reading, or two with
hours of nothing between, do not).  Readings between ``break_c`` and ``fever_c``
neither start nor break a run.  Readings taken off the wrist are no readings:
while not worn (``worn: false`` or ``off_wrist``) nothing is judged and a run
starts afresh when the watch is back on.

MEDIUM; HIGH when two consecutive readings reach ``high_c`` (escalated if it
climbs there later).  One RAISE, a reminder every ``reraise_minutes`` while the
readings are still febrile, CLEAR once readings below ``normal_c`` have spanned
``clear_minutes`` with none at or above it between.  Value: the reading, °C.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> t0 = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)  # 14:00 local
>>> temps = [37.0, 37.6, 38.2, 38.5, 38.6, 38.6, 38.4, 37.9, 37.2, 37.0, 36.9, 36.9, 36.8]
>>> rule, found = FeverRule(), []
>>> for i, c in enumerate(temps):
...     found += rule.update(Vitals("w1", i, t0 + timedelta(minutes=15 * i), temp=c))
>>> [(f.action.value, f.ts.minute + 60 * (f.ts.hour - 6), f.message) for f in found]
[('raise', 60, '持续发热 38.6℃'), ('clear', 180, '体温已恢复正常 36.8℃')]
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.core import Action, Finding, Severity
from protocol.messages import Event, Reading, Vitals


@dataclass(frozen=True, slots=True)
class FeverSettings:
    """Per-elder fever settings (°C, minutes)."""

    fever_c: float = 38.0  # at or above: febrile
    high_c: float = 39.0  # two readings running at or above: HIGH
    sustain_minutes: float = 30.0  # febrile readings at least this far apart...
    break_c: float = 37.5  # ...with none below this between them
    max_gap_minutes: float = 90.0  # consecutive readings further apart: the run restarts
    normal_c: float = 37.5  # below this: normal again...
    clear_minutes: float = 60.0  # ...over readings spanning this long: CLEAR
    reraise_minutes: float | None = 120.0


class FeverRule:
    """One elder's fever rule (kind ``fever``; MEDIUM, HIGH at 39 °C)."""

    kind = "fever"
    accepts = (Vitals, Event)  # fixes and statuses say nothing about temperature

    def __init__(self, settings: FeverSettings | None = None) -> None:
        self.settings = settings or FeverSettings()
        self._st: dict[str, Any] = {
            "worn": True,
            "last_t": None,  # time of the latest temperature reading judged
            "last_c": None,  # its value
            "run": None,  # [t0, max] of the febrile run: since the first reading >= fever_c
            "normal_since": None,  # while open: readings normal since then
            "open": None,  # {"t0", "last_raise", "severity"}
        }

    # --- the Rule protocol ----------------------------------------------------------

    def update(self, reading: Reading) -> list[Finding]:
        st = self._st
        worn = _worn_change(reading)
        if worn is False:
            st["worn"], st["run"], st["last_t"], st["last_c"] = False, None, None, None
            st["normal_since"] = None
        elif worn is True:
            st["worn"] = True
        if not isinstance(reading, Vitals) or reading.temp is None or not st["worn"]:
            return []
        t, c = reading.ts.timestamp(), float(reading.temp)
        last_t, last_c = st["last_t"], st["last_c"]
        if last_t is not None and t < last_t:
            return []  # older than what we judged (ordering is the shell's job)
        s = self.settings
        if last_t is not None and t - last_t > s.max_gap_minutes * 60:
            st["run"], st["normal_since"], last_c = None, None, None  # no readings: no run
        st["last_t"], st["last_c"] = t, c
        run = st["run"]
        if c < s.break_c:
            run = None
        elif c >= s.fever_c:
            run = [t, c] if run is None else [run[0], max(run[1], c)]
        st["run"] = run
        high = c >= s.high_c and last_c is not None and last_c >= s.high_c
        severity = Severity.HIGH if high else Severity.MEDIUM
        ep = st["open"]
        if ep is None:
            if run is not None and c >= s.fever_c and t - run[0] >= s.sustain_minutes * 60:
                st["open"] = {"t0": t, "last_raise": t, "severity": severity.value}
                st["normal_since"] = None
                return [self._raise(t, c, "open", severity)]
            return []
        if c < s.normal_c:
            if st["normal_since"] is None:
                st["normal_since"] = t
            if t - st["normal_since"] >= s.clear_minutes * 60:
                return [self._clear(t, c)]
            return []
        st["normal_since"] = None
        if high and ep["severity"] != Severity.HIGH.value:
            ep["severity"], ep["last_raise"] = Severity.HIGH.value, t
            return [self._raise(t, c, "escalate", Severity.HIGH)]
        due = s.reraise_minutes is not None and t - ep["last_raise"] >= s.reraise_minutes * 60
        if due and c >= s.fever_c:
            ep["last_raise"] = t
            return [self._raise(t, c, "reraise", Severity(ep["severity"]))]
        return []

    def advance(self, now: datetime) -> list[Finding]:
        return []  # every verdict needs a reading

    def next_due(self) -> float | None:
        """Never due without a reading: the engine need not tick this rule."""
        return None

    def snapshot(self) -> dict[str, Any]:
        return _copied(self._st)

    def restore(self, state: dict[str, Any]) -> None:
        self._st = _copied(state)

    # --- findings -------------------------------------------------------------------

    def _raise(self, t: float, c: float, episode: str, severity: Severity) -> Finding:
        run = self._st["run"]
        return Finding(
            kind=self.kind,
            severity=severity,
            ts=_dt(t),
            message=f"持续发热 {c:.1f}℃",
            value=round(c, 1),
            detail={
                "episode": episode,
                "febrile_since": None if run is None else _dt(run[0]).isoformat(),
                "max_c": None if run is None else round(run[1], 1),
            },
        )

    def _clear(self, t: float, c: float) -> Finding:
        st = self._st
        ep = st["open"]
        st["open"], st["normal_since"] = None, None
        return Finding(
            kind=self.kind,
            severity=Severity(ep["severity"]),
            ts=_dt(t),
            message=f"体温已恢复正常 {c:.1f}℃",
            action=Action.CLEAR,
            value=round(c, 1),
            detail={"episode": "clear", "fever_minutes": round((t - ep["t0"]) / 60, 1)},
        )


def _worn_change(reading: Reading) -> bool | None:
    """The wear state a reading announces, if any (``worn`` field or wrist events)."""
    if isinstance(reading, Vitals):
        return reading.worn
    if isinstance(reading, Event) and reading.type in ("off_wrist", "on_wrist"):
        return reading.type == "on_wrist"
    return None


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _copied(state: dict[str, Any]) -> dict[str, Any]:
    # A deep copy of plain JSON-shaped state; a pickle round trip is several times
    # faster than ``copy.deepcopy`` and the fast path moves states at every hand-over.
    return pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
