"""A day plan: the data one elder's day is made of, and how it may be edited.

A plan is a sorted list of segments covering one local day (asleep, sitting at home,
pottering, walking a route, sitting in the park, charging the watch, lying after a
fall...) plus the day's coverage gaps, silent windows, device events and physiological
overrides.  ``elder_model`` writes an ordinary day into a ``Draft``; scenarios edit the
draft with ``insert`` / ``outings_home`` / ...; ``freeze`` settles the battery and
turns it into a ``DayPlan`` whose per-segment numbers are arrays for vectorised lookup.

>>> from simulator.community import build_roster
>>> elder = build_roster(1, seed=0)[0]
>>> d = Draft(elder, 0, [Segment(0, DAY, Act.SLEEP)])
>>> d.insert(Segment(HOUR, 2 * HOUR, Act.POTTER, step_rate=30.0))
>>> [s.act.name for s in d.segments]
['SLEEP', 'POTTER', 'SLEEP']
>>> plan = freeze(d, battery_start=80.0)
>>> int(plan.steps(3 * HOUR)), round(float(plan.battery(3 * HOUR)), 1)
(1800, 77.3)
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Protocol

import numpy as np

from simulator.clock import DAY, HOUR, MINUTE, SECOND
from simulator.community import SimElder
from simulator.streets import Point, Route


class Act(IntEnum):
    SLEEP = 0
    REST = 1  # awake at home, sitting
    NAP = 2
    POTTER = 3  # short walking bouts indoors
    WALK = 4  # outdoors along a route
    DWELL = 5  # at a destination (park, market, friend's), few steps
    CHARGING = 6  # watch on its charger at home: not worn
    OFF_WRIST = 7  # watch taken off, not charging
    LYING = 8  # on the ground after a fall


# Per activity: heart-rate offset from resting (bpm), systolic offset (mmHg),
# respiration offset (/min), battery drain (%/h; GPS outdoors costs more).
_HR = {
    Act.SLEEP: -8.0,
    Act.REST: 0.0,
    Act.NAP: -5.0,
    Act.POTTER: 8.0,
    Act.WALK: 20.0,
    Act.DWELL: 3.0,
    Act.CHARGING: 0.0,
    Act.OFF_WRIST: 0.0,
    Act.LYING: 14.0,
}
_BP = {
    Act.SLEEP: -9.0,
    Act.NAP: -5.0,
    Act.POTTER: 4.0,
    Act.WALK: 12.0,
    Act.DWELL: 2.0,
    Act.LYING: 8.0,
}
_RR = {Act.SLEEP: -1.0, Act.NAP: -0.5, Act.POTTER: 1.0, Act.WALK: 3.0, Act.LYING: 2.0}
_DRAIN_INDOOR, _DRAIN_OUTDOOR, _DRAIN_OFF, _CHARGE_RATE = -0.9, -1.6, -0.5, 45.0
_CHARGE_WHEN_BELOW = 45.0  # a low watch always goes on the charger in the evening


@dataclass(slots=True)
class Segment:
    """One stretch of a day; times are epoch ms, ``[start, end)``."""

    start: int
    end: int
    act: Act
    step_rate: float = 0.0  # steps per minute
    hr_add: float | None = None  # None: the activity's default
    route: Route | None = None
    d0: float = 0.0  # metres of the route already walked at ``start``
    speed: float = 0.0  # m/s along the route
    pos: Point | None = None  # fixed position; None = at home
    outdoors: bool = False
    outing: int = -1  # which outing (walk out, dwell, walk back) this belongs to
    forced: bool = False  # CHARGING that happens whatever the battery says
    charge_u: float = 0.0  # the draw that decides a tentative evening charge

    @property
    def worn(self) -> bool:
        return self.act not in (Act.CHARGING, Act.OFF_WRIST)


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    t: int  # the event's own time (its ``ts``)
    type: str
    accel: list[list[float]] | None = None
    delay: int = 0  # ms between ``t`` and sending (a fall burst includes what follows impact)


@dataclass(frozen=True, slots=True)
class VitalOverride:
    """A physiological change over ``[start, end)`` applied by ``sensors``."""

    kind: str
    start: int
    end: int
    params: dict[str, float]


class Injection(Protocol):
    """Anything that can edit a day's draft (scenarios implement this)."""

    def apply(self, draft: Draft) -> None: ...


@dataclass(slots=True)
class Draft:
    """A day plan under construction, with the editing operations scenarios use."""

    elder: SimElder
    day_start: int
    segments: list[Segment]
    gaps: list[tuple[int, int]] = field(default_factory=list)
    silent: list[tuple[int, int]] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    overrides: list[VitalOverride] = field(default_factory=list)
    battery_line: tuple[int, int, float, float] | None = None  # (t0, t1, b0, b1) linear
    next_outing: int = 100

    @property
    def day_end(self) -> int:
        return self.day_start + DAY

    @property
    def home(self) -> Point:
        return self.elder.home_xy

    def at(self, t: int) -> Segment:
        for s in self.segments:
            if s.start <= t < s.end:
                return s
        raise ValueError(f"{t} is outside the day")

    def position(self, t: int) -> Point:
        s = self.at(t)
        if s.route is not None:
            x, y = s.route.at(np.array([s.d0 + s.speed * (t - s.start) / SECOND]))
            return (float(x[0]), float(y[0]))
        return s.pos if s.pos is not None else self.home

    def cut(self, a: int, b: int) -> None:
        """Remove ``[a, b)`` from the timeline, splitting segments that straddle it."""
        out: list[Segment] = []
        for s in self.segments:
            if s.end <= a or s.start >= b:
                out.append(s)
                continue
            if s.start < a:
                out.append(replace(s, end=a))
            if s.end > b:
                out.append(replace(s, start=b, d0=_d_at(s, b)))
        self.segments = out

    def insert(self, *segments: Segment) -> None:
        """Put segments in, replacing whatever was planned in their time.

        The new segments must not overlap one another.
        """
        new = sorted(
            (
                s
                if self.day_start <= s.start and s.end <= self.day_end
                else replace(s, start=max(s.start, self.day_start), end=min(s.end, self.day_end))
                for s in segments
            ),
            key=lambda s: s.start,
        )
        new = [s for s in new if s.start < s.end]
        if not new:
            return
        if any(a.end > b.start for a, b in itertools.pairwise(new)):
            raise ValueError("inserted segments overlap")
        starts = [s.start for s in new]
        out: list[Segment] = []
        for s in self.segments:  # keep what lies between the new segments
            k = bisect.bisect_right(starts, s.start) - 1
            t = s.start
            if k >= 0:
                t = max(t, new[k].end)
            k += 1
            while t < s.end:
                stop = min(s.end, new[k].start) if k < len(new) else s.end
                if t == s.start and stop == s.end:
                    out.append(s)  # untouched (the common case: copying is what costs)
                elif stop > t:
                    out.append(
                        replace(s, start=t, end=stop, d0=_d_at(s, t))
                        if t != s.start
                        else replace(s, end=stop)
                    )
                if k >= len(new):
                    break
                t = max(t, new[k].end)
                k += 1
        out.extend(new)
        out.sort(key=lambda s: s.start)
        self.segments = out

    def bedtime(self) -> int:
        """Start of the evening's sleep."""
        evening = self.day_start + 18 * HOUR
        return min(
            (s.start for s in self.segments if s.act == Act.SLEEP and s.start >= evening),
            default=self.day_end,
        )

    def end_outing(self, outing: int, t: int) -> None:
        """What was left of an outing after ``t`` does not happen (the elder is home)."""
        self.cut(t, t)  # splits the segment running at ``t``
        for s in self.segments:
            if s.outing == outing and s.start >= t:
                s.act, s.route, s.pos, s.outdoors, s.step_rate = Act.REST, None, None, False, 0.0
                s.hr_add, s.outing = None, -1

    def outings_home(self, a: int, b: int, keep: int = -1) -> None:
        """Outings touching ``[a, b)`` never happen: the elder stays home instead.

        Used before putting a scenario in, so nobody is teleported from a street home.
        """
        hit = {
            s.outing
            for s in self.segments
            if s.outing >= 0 and s.outing != keep and s.start < b and s.end > a
        }
        spans = self._spans(hit)
        for s in self.segments:
            if s.outing in hit:
                s.act, s.route, s.pos, s.outdoors, s.step_rate = Act.REST, None, None, False, 0.0
                s.hr_add, s.outing = None, -1
        self.gaps = [g for g in self.gaps if not any(_overlaps(g, o) for o in spans)]
        self.drop_gaps(a, b)

    def _spans(self, outings: set[int]) -> list[tuple[int, int]]:
        return [(s.start, s.end) for s in self.segments if s.outing in outings]

    def drop_gaps(self, a: int, b: int) -> None:
        """No coverage gap near ``[a, b)`` (keeps a scenario's signature on time)."""
        self.gaps = [g for g in self.gaps if not _overlaps(g, (a - MINUTE, b + MINUTE))]

    def new_outing(self) -> int:
        self.next_outing += 1
        return self.next_outing


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass(frozen=True, slots=True, eq=False)
class DayPlan:
    """A frozen day plan with its per-segment numbers as arrays, for vectorised lookup."""

    elder: SimElder
    day_start: int
    segments: tuple[Segment, ...]
    gaps: tuple[tuple[int, int], ...]
    silent: tuple[tuple[int, int], ...]
    events: tuple[DeviceEvent, ...]
    overrides: tuple[VitalOverride, ...]
    starts: np.ndarray  # int64
    act: np.ndarray
    hr_add: np.ndarray
    hr_prev: np.ndarray  # previous segment's hr_add (heart rate eases from it)
    bp_add: np.ndarray
    rr_add: np.ndarray
    worn: np.ndarray
    outdoors: np.ndarray
    step_rate: np.ndarray  # per ms
    steps0: np.ndarray  # cumulative steps at segment start
    batt0: np.ndarray
    batt_rate: np.ndarray  # % per ms
    battery_end: float

    @property
    def day_end(self) -> int:
        return self.day_start + DAY

    def index(self, t: np.ndarray | int) -> np.ndarray:
        """Which segment each time in ``t`` falls in."""
        i: np.ndarray = np.searchsorted(self.starts, t, side="right") - 1
        return i

    def steps(self, t: np.ndarray | int) -> np.ndarray:
        """Today's cumulative step count at ``t`` (what the device shows)."""
        i = self.index(t)
        n: np.ndarray = np.floor(self.steps0[i] + self.step_rate[i] * (t - self.starts[i]))
        return n.astype(np.int64)

    def battery(self, t: np.ndarray | int) -> np.ndarray:
        """Battery level in % (before the gauge rounds it)."""
        i = self.index(t)
        b: np.ndarray = np.clip(self.batt0[i] + self.batt_rate[i] * (t - self.starts[i]), 0, 100)
        return b

    def position(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True position (metres east/north of the centre) at each time in ``t``."""
        t = np.asarray(t, dtype=np.int64)
        i = self.index(t)
        hx, hy = self.elder.home_xy
        x, y = np.full(t.shape, hx), np.full(t.shape, hy)
        for k in np.unique(i).tolist():
            s = self.segments[k]
            if s.route is None and s.pos is None:
                continue
            m = i == k
            if s.route is not None:
                x[m], y[m] = s.route.at(s.d0 + s.speed * (t[m] - s.start) / SECOND)
            else:
                assert s.pos is not None
                x[m], y[m] = s.pos
        return x, y


def freeze(draft: Draft, battery_start: float) -> DayPlan:
    """Settle the battery (and with it the evening charge) and build the lookup arrays."""
    if draft.battery_line is not None:
        t0, t1 = draft.battery_line[:2]
        for t in (t0, t1):
            if draft.day_start < t < draft.day_end:
                s = draft.at(t)
                if s.start < t:
                    draft.insert(replace(s, start=t, d0=_d_at(s, t)))
    segs = sorted(draft.segments, key=lambda s: s.start)
    n = len(segs)
    batt0, rate = np.empty(n), np.empty(n)
    b = float(battery_start)
    for i, s in enumerate(segs):
        line = draft.battery_line
        if line is not None and line[0] <= s.start < line[1]:
            t0, t1, b0, b1 = line
            slope = (b1 - b0) / (t1 - t0)
            batt0[i], rate[i] = b0 + slope * (s.start - t0), slope
            if s.act == Act.CHARGING and not s.forced:  # forgot to charge: that's the story
                s.act = Act.REST
        else:
            if s.act == Act.CHARGING and not (
                s.forced or s.charge_u < draft.elder.charge_p or b < _CHARGE_WHEN_BELOW
            ):
                s.act = Act.REST  # skipped the charge tonight; watched TV instead
            batt0[i] = b
            rate[i] = (
                _CHARGE_RATE
                if s.act == Act.CHARGING
                else _DRAIN_OFF
                if s.act == Act.OFF_WRIST
                else _DRAIN_OUTDOOR
                if s.outdoors
                else _DRAIN_INDOOR
            ) / HOUR
        b = min(max(float(batt0[i] + rate[i] * (s.end - s.start)), 0.0), 100.0)
    events = list(draft.events)
    for prev, s in itertools.pairwise(segs):  # the watch notices coming off/on
        if prev.worn and not s.worn:
            events.append(DeviceEvent(s.start, "off_wrist"))
        elif s.worn and not prev.worn:
            events.append(DeviceEvent(s.start, "on_wrist"))
    hr_add = np.array([_HR[s.act] if s.hr_add is None else s.hr_add for s in segs])
    step_rate = np.array([s.step_rate if s.worn else 0.0 for s in segs]) / MINUTE
    starts = np.array([s.start for s in segs], dtype=np.int64)
    durations = np.array([s.end - s.start for s in segs], dtype=np.int64)
    steps0 = np.concatenate([[0.0], np.cumsum(step_rate * durations)[:-1]])
    return DayPlan(
        elder=draft.elder,
        day_start=draft.day_start,
        segments=tuple(segs),
        gaps=tuple(sorted(draft.gaps)),
        silent=tuple(sorted(draft.silent)),
        events=tuple(sorted(events, key=lambda e: e.t)),
        overrides=tuple(draft.overrides),
        starts=starts,
        act=np.array([int(s.act) for s in segs]),
        hr_add=hr_add,
        hr_prev=np.concatenate([[hr_add[-1]], hr_add[:-1]]),
        bp_add=np.array([_BP.get(s.act, 0.0) for s in segs]),
        rr_add=np.array([_RR.get(s.act, 0.0) for s in segs]),
        worn=np.array([s.worn for s in segs]),
        outdoors=np.array([s.outdoors for s in segs]),
        step_rate=step_rate,
        steps0=steps0,
        batt0=batt0,
        batt_rate=rate,
        battery_end=b,
    )


def _d_at(s: Segment, t: int) -> float:
    return s.d0 + s.speed * (t - s.start) / SECOND if s.route is not None else s.d0


def describe(plan: DayPlan) -> list[dict[str, Any]]:
    """The plan as plain rows (for debugging and the docs)."""
    return [
        {
            "start": s.start,
            "end": s.end,
            "act": s.act.name,
            "outdoors": s.outdoors,
            "steps_per_min": round(s.step_rate, 1),
        }
        for s in plan.segments
    ]
