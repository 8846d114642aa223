"""Named events injected into chosen elders' days, with the ground truth they leave.

``schedule`` picks, deterministically from the seed, which elder gets each scenario and
when (inside the run window and at a plausible local time: night wandering between
00:00 and 05:00, inactivity in the daytime, ...).  Each ``Scenario`` then edits the day
plans it touches (see ``elder_model.Draft``) and knows its ground-truth record.

>>> from datetime import UTC, datetime, timedelta
>>> from simulator.community import build_roster
>>> roster = build_roster(4, seed=5)
>>> plan = schedule(roster, datetime(2026, 11, 28, 0, 0, tzinfo=UTC),  # 08:00 local
...                 timedelta(hours=10), seed=5, names=["sos", "tachycardia"])
>>> [s.kind for s in plan.scenarios], plan.skipped
(['sos', 'tachycardia'], [])
>>> sorted(plan.scenarios[0].truth())
['device_id', 'elder', 'end', 'kind', 'start']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from simulator import accel
from simulator.clock import DAY, HOUR, MINUTE, SECOND, iso_utc, local_day_start, ms
from simulator.community import SimElder
from simulator.elder_model import base_draft, walk
from simulator.plan import Act, DeviceEvent, Draft, Segment, VitalOverride
from simulator.streets import N_INNER, NODES, Route, path_to_node

LOW_BATTERY = 10.0  # % at which the watch sends ``low_battery``
SCENARIOS: tuple[str, ...] = (
    "fall",
    "sos",
    "tachycardia",
    "hypoxia",
    "fever",
    "night_wandering",
    "inactivity",
    "device_offline",
    "not_worn",
    "low_battery",
)


@dataclass(frozen=True, slots=True)
class _Spec:
    hours: tuple[float, float]  # allowed local start time
    minutes: tuple[float, float]  # duration (for wandering and low battery: a first guess)


_SPECS: dict[str, _Spec] = {
    "fall": _Spec((7.5, 19.5), (8, 25)),  # duration = time lying on the ground
    "sos": _Spec((7.0, 21.0), (0, 0)),
    "tachycardia": _Spec((8.0, 19.0), (20, 45)),
    "hypoxia": _Spec((8.0, 20.0), (25, 60)),
    "fever": _Spec((8.0, 16.0), (180, 330)),
    "night_wandering": _Spec((0.5, 3.5), (40, 80)),
    # Still for longer than is ordinary: one elder-day in ten here holds 3 h without a
    # step (sitting, then a nap), one in fifty 4 h -- the inactivity rule's default.
    "inactivity": _Spec((8.5, 13.0), (240, 330)),
    "device_offline": _Spec((0.0, 22.0), (35, 90)),
    "not_worn": _Spec((8.0, 16.5), (60, 100)),
    "low_battery": _Spec((15.0, 17.5), (90, 300)),  # ends when charged in the evening
}


def normalise(names: Iterable[str]) -> list[str]:
    """Scenario names as given on a command line → canonical names; ``all`` expands.

    >>> normalise(["all"])[:2], normalise(["night-wandering", "Device offline"])
    (['fall', 'sos'], ['night_wandering', 'device_offline'])
    """
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower().replace("-", "_").replace(" ", "_")
        if name == "all":
            out.extend(SCENARIOS)
        elif name in SCENARIOS:
            out.append(name)
        elif name:
            raise ValueError(f"unknown scenario {raw!r}; choose from {', '.join(SCENARIOS)}, all")
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Scenario:
    """One injected event: who, what, when, and the parameters drawn for it."""

    kind: str
    elder: SimElder
    start: int  # epoch ms
    end: int
    params: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, str]:
        """The ground-truth record: what detection should find, and over which window."""
        return {
            "elder": self.elder.key,
            "device_id": self.elder.device_id,
            "kind": self.kind,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
        }

    @property
    def span(self) -> tuple[int, int]:
        """Time over which this scenario changes the elder's days."""
        if self.kind == "low_battery":
            return (self.params["from"], self.params["charged"])
        return (self.start, self.end + HOUR)  # a fall's walk home / rest can run past ``end``

    def touches(self, day_start: int) -> bool:
        a, b = self.span
        return a < day_start + DAY and b >= day_start

    def apply(self, d: Draft) -> None:
        """Edit one day's draft (called for every day the scenario touches)."""
        if not self.touches(d.day_start):
            return
        if self.kind != "low_battery" and not d.day_start <= self.start < d.day_end:
            return  # every other scenario lies within one local day (see ``_windows``)
        getattr(self, f"_apply_{self.kind}")(d)

    # --- one editor per kind -------------------------------------------------------------

    def _apply_fall(self, d: Draft) -> None:
        t0 = self.start
        rng = np.random.default_rng(self.params["seed"])
        seg = d.at(t0)
        d.drop_gaps(t0 - 15 * MINUTE, self.end + 30 * MINUTE)
        if seg.outing >= 0 and seg.act in (Act.WALK, Act.DWELL):
            p = d.position(t0)
            home_route = _way_home(d, seg, t0)
            speed = 0.6
            t1 = self.end
            t2 = t1 + int(home_route.length / speed * SECOND)
            d.end_outing(seg.outing, t0)
            d.outings_home(t0, t2 + 30 * MINUTE, keep=seg.outing)
            d.insert(
                Segment(t0, t1, Act.LYING, pos=p, outdoors=True, outing=seg.outing),
                walk(t1, t2, home_route, speed, 0.45, 25.0, seg.outing),
                Segment(t2, t2 + 30 * MINUTE, Act.REST, hr_add=6.0),
            )
            walking = seg.act == Act.WALK
        else:
            d.outings_home(t0 - 10 * MINUTE, self.end + 30 * MINUTE)
            d.insert(
                Segment(t0, self.end, Act.LYING),
                Segment(self.end, self.end + 30 * MINUTE, Act.REST, hr_add=6.0),
            )
            walking = False
        burst = accel.fall_burst(rng, walking=walking)
        post = int((accel.SECONDS - accel.PRE_S) * SECOND)
        d.events.append(DeviceEvent(t0, "fall", burst, delay=post))

    def _apply_sos(self, d: Draft) -> None:
        d.drop_gaps(self.start, self.end)
        d.events.append(DeviceEvent(self.start, "sos"))

    def _rest(self, d: Draft, hr_add: float | None = None) -> None:
        d.outings_home(self.start - 10 * MINUTE, self.end)
        d.insert(Segment(self.start, self.end, Act.REST, hr_add=hr_add))
        d.drop_gaps(self.start, self.end)

    def _apply_tachycardia(self, d: Draft) -> None:
        self._rest(d)
        d.overrides.append(
            VitalOverride("tachycardia", self.start, self.end, {"hr": self.params["hr"]})
        )

    def _apply_hypoxia(self, d: Draft) -> None:
        self._rest(d)
        d.overrides.append(
            VitalOverride("hypoxia", self.start, self.end, {"spo2": self.params["spo2"]})
        )

    def _apply_fever(self, d: Draft) -> None:
        d.outings_home(self.start, self.end)  # feels ill: stays in, still pads about
        d.drop_gaps(self.start, self.end)
        d.overrides.append(
            VitalOverride("fever", self.start, self.end, {"peak": self.params["peak"]})
        )

    def _apply_inactivity(self, d: Draft) -> None:
        self._rest(d, hr_add=-2.0)

    def _apply_not_worn(self, d: Draft) -> None:
        d.outings_home(self.start - 10 * MINUTE, self.end)
        d.insert(Segment(self.start, self.end, Act.OFF_WRIST))
        d.drop_gaps(self.start, self.end)

    def _apply_device_offline(self, d: Draft) -> None:
        d.drop_gaps(self.start, self.end)
        d.silent.append((self.start, self.end))

    def _apply_night_wandering(self, d: Draft) -> None:
        route: Route = self.params["route"]
        speed = self.params["speed"]
        t1 = self.start + int(route.length / speed * SECOND)
        t2 = t1 + self.params["dwell"]
        far = (float(route.x[-1]), float(route.y[-1]))
        oid = d.new_outing()
        d.insert(
            walk(self.start, t1, route, speed, 0.45, 16.0, oid),
            Segment(
                t1, t2, Act.DWELL, step_rate=6.0, pos=far, outdoors=True, outing=oid, hr_add=6.0
            ),
            walk(t2, self.end, route.reversed(), speed, 0.45, 16.0, oid),
        )
        d.drop_gaps(self.start, self.end)

    def _apply_low_battery(self, d: Draft) -> None:
        p = self.params
        d.battery_line = (p["from"], p["charged"], p["battery_from"], p["battery_charged"])
        if d.day_start <= self.start < d.day_end:
            d.events.append(DeviceEvent(self.start, "low_battery"))
        t1 = p["charged"]
        if d.day_start <= t1 < d.day_end:
            end = min(t1 + p["charge"], d.bedtime() - 5 * MINUTE)
            d.outings_home(t1 - 10 * MINUTE, end)
            d.insert(Segment(t1, max(end, t1 + 20 * MINUTE), Act.CHARGING, forced=True))


def _way_home(d: Draft, seg: Segment, t: int) -> Route:
    """Route from where the elder is at ``t`` (on an outing) back home."""
    parts = [s for s in d.segments if s.outing == seg.outing]
    dwell = next((s for s in parts if s.act == Act.DWELL), None)
    last = parts[-1]
    if seg.act == Act.DWELL:  # sitting at the destination: the planned walk back
        assert last.route is not None
        return last.route.tail(last.d0)
    assert seg.route is not None
    walked = seg.d0 + seg.speed * (t - seg.start) / SECOND
    # A loop: whichever way round is shorter.  Out to a place and back: on the way out
    # turn round, on the way back go on.
    going_on = walked > seg.route.length / 2 if dwell is None else seg.start >= dwell.end
    return seg.route.tail(walked) if going_on else seg.route.head(walked).reversed()


@dataclass(frozen=True, slots=True)
class Schedule:
    scenarios: list[Scenario]
    skipped: list[tuple[str, str]]  # (name, why)

    def for_elder(self, key: str) -> list[Scenario]:
        return [s for s in self.scenarios if s.elder.key == key]

    def truth(self) -> list[dict[str, str]]:
        return [s.truth() for s in sorted(self.scenarios, key=lambda s: (s.start, s.elder.key))]


def schedule(
    roster: Sequence[SimElder],
    start: datetime,
    duration: timedelta,
    seed: int,
    names: Iterable[str],
) -> Schedule:
    """Place each named scenario on an elder (distinct elders while there are enough)."""
    names = normalise(names)
    run_a = ms(start)
    run_b = run_a + int(duration / timedelta(milliseconds=1))
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5CE7])
    order = [int(i) for i in rng.permutation(len(roster))]
    busy: dict[str, list[tuple[int, int]]] = {}
    out: list[Scenario] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        if not roster:
            skipped.append((name, "no elders"))
            continue
        spec = _SPECS[name]
        lead = min(15 * MINUTE, (run_b - run_a) // 10)
        placed = None
        # Elders with nothing injected yet first; then anyone whose calendar has room.
        candidates = sorted(order, key=lambda i: len(busy.get(roster[i].key, [])))
        if name == "hypoxia":  # a COPD elder's low SpO2 is their normal: pick someone else
            candidates = sorted(candidates, key=lambda i: roster[i].hypercapnic)
        try:
            for i in candidates:
                elder = roster[i]
                for _ in range(6):
                    sc = _draw(name, spec, elder, rng, run_a, run_b, lead, seed)
                    if sc is not None and not any(
                        _clash(sc.span, w) for w in busy.get(elder.key, [])
                    ):
                        placed = sc
                        break
                if placed is not None:
                    break
        except _NoRoom:
            pass
        if placed is None:
            hours = f"{spec.hours[0]:g}-{spec.hours[1]:g} h local"
            skipped.append(
                (name, f"the run window leaves no room for it ({hours}, {spec.minutes[0]:g}+ min)")
            )
            continue
        out.append(placed)
        busy.setdefault(placed.elder.key, []).append(placed.span)
    return Schedule(out, skipped)


class _NoRoom(Exception):
    """The run window has no allowed start time for this scenario at all."""


def _clash(a: tuple[int, int], b: tuple[int, int]) -> bool:
    margin = 60 * MINUTE
    return a[0] < b[1] + margin and b[0] < a[1] + margin


def _windows(spec: _Spec, run_a: int, run_b: int, lead: int, dur: int) -> list[tuple[int, int]]:
    """Intervals of allowed start times: right local hours, inside the run, same day."""
    out = []
    day = local_day_start(run_a)
    while day < run_b:
        a = max(day + int(spec.hours[0] * HOUR), run_a + lead)
        b = min(
            day + int(spec.hours[1] * HOUR), run_b - dur - 2 * MINUTE, day + DAY - dur - 10 * MINUTE
        )
        if b > a:
            out.append((a, b))
        day += DAY
    return out


def _pick(rng: np.random.Generator, windows: list[tuple[int, int]]) -> int:
    lengths = np.array([b - a for a, b in windows], dtype=float)
    k = int(rng.choice(len(windows), p=lengths / lengths.sum()))
    a, b = windows[k]
    return int(a + rng.random() * (b - a))


def _draw(
    name: str,
    spec: _Spec,
    elder: SimElder,
    rng: np.random.Generator,
    run_a: int,
    run_b: int,
    lead: int,
    seed: int,
) -> Scenario | None:
    """One candidate placement of ``name`` on ``elder``; None to try again.

    Raises ``_NoRoom`` when the run window has no allowed start time whatever is drawn.
    """
    lo, hi = spec.minutes
    params: dict[str, Any] = {}
    if name == "night_wandering":
        params["route"] = _wander_route(elder, rng)
        params["speed"] = float(rng.uniform(0.6, 0.8))
        params["dwell"] = int(rng.uniform(5, 15) * MINUTE)
        dur = 2 * int(params["route"].length / params["speed"] * SECOND) + params["dwell"]
    elif name == "low_battery":
        dur = int(lo * MINUTE)  # lower bound; the real end is the evening charge
    else:
        dur = int(rng.uniform(lo, hi) * MINUTE)
    windows = _windows(spec, run_a, run_b, lead, dur)
    if not windows:
        if name == "night_wandering":  # depends on the elder's route: others may fit
            return None
        raise _NoRoom(name)
    t0 = _pick(rng, windows)
    if name == "fall":
        t0 = _fall_time(elder, rng, t0, dur, spec, run_a, run_b, lead, seed)
        params["seed"] = [seed & 0xFFFFFFFF, elder.salt, t0 % 2**32]
    elif name == "tachycardia":
        params["hr"] = float(rng.uniform(132, 148))
    elif name == "hypoxia":
        params["spo2"] = float(rng.uniform(86, 88.5))
    elif name == "fever":
        params["peak"] = float(rng.uniform(38.7, 39.3))
    elif name == "low_battery":
        day = local_day_start(t0)
        charged = day + int(rng.uniform(19.0, 20.5) * HOUR)
        if charged > run_b - 2 * MINUTE:
            charged = run_b - 2 * MINUTE
        if charged - t0 < 30 * MINUTE or t0 - run_a > 55 * HOUR:
            return None
        rate = float(rng.uniform(1.2, 1.6)) / HOUR  # % per ms
        # The gauge reads whole percent (rounded down): it shows 9 % just after ``t0``.
        b_from = min(LOW_BATTERY + rate * (t0 - run_a), 98.0)
        rate = (b_from - LOW_BATTERY) / max(t0 - run_a, 1)
        params.update(
            {
                "from": run_a,
                "charged": charged,
                "battery_from": b_from,
                "battery_charged": max(LOW_BATTERY - rate * (charged - t0), 2.0),
                "charge": int(rng.uniform(90, 150) * MINUTE),
            }
        )
        dur = charged - t0
    return Scenario(name, elder, t0, t0 + dur, params)


def _fall_time(
    elder: SimElder,
    rng: np.random.Generator,
    t0: int,
    dur: int,
    spec: _Spec,
    run_a: int,
    run_b: int,
    lead: int,
    seed: int,
) -> int:
    """Most falls here happen out walking (the map's most telling case), else at home."""
    if rng.random() >= 0.6:
        return t0
    day = local_day_start(t0)
    draft = base_draft(elder, day, seed)
    allowed = _windows(spec, run_a, run_b, lead, dur)
    spans = []
    for s in draft.segments:
        if s.act == Act.WALK and s.end - s.start > 4 * MINUTE:
            for a, b in allowed:
                lo, hi = max(a, s.start + MINUTE), min(b, s.end - MINUTE)
                if hi > lo:
                    spans.append((lo, hi))
    return _pick(rng, spans) if spans else t0


def _wander_route(elder: SimElder, rng: np.random.Generator) -> Route:
    """Out of the gate and away along a street leaving the community, 0.65-1.1 km out."""
    hx, hy = elder.home_xy
    outer = list(range(N_INNER, len(NODES)))
    target = int(outer[int(rng.integers(len(outer)))])
    full = Route.through([elder.home_xy, *path_to_node(elder.place.gate, target)])
    away = float(rng.uniform(650, 1100))
    d = np.arange(0.0, full.length, 5.0)
    x, y = full.at(d)
    far = np.nonzero(np.hypot(x - hx, y - hy) >= away)[0]
    cut = float(d[far[0]]) if far.size else full.length
    return full.head(cut)
