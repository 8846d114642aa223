"""An elder's ordinary day: sleep, outings, a nap, pottering, the evening charge.

``plan_day`` is a pure function of ``(elder, local day, seed, injections, battery at
midnight)``.  The routine below writes a draft (see ``plan``): up at the elder's usual
hour, maybe a brisk morning loop or a stroll to the park, the market mid-morning, an
afternoon visit (park, service centre, a friend's compound), pottering at home between,
the watch on its charger in the evening (most evenings), asleep with a toilet trip or two
at night.  Scenarios then edit the draft; ``sensors`` turns the frozen plan into readings.

>>> from simulator.community import build_roster
>>> from simulator.clock import local_day_start, HOUR
>>> elder = build_roster(1, seed=3)[0]
>>> day = local_day_start(1795795200000)
>>> plan = plan_day(elder, day, seed=3)
>>> plan.segments[0].act.name, plan.segments[-1].act.name  # asleep at both ends
('SLEEP', 'SLEEP')
>>> bool(plan.steps(day + 23 * HOUR) >= plan.steps(day + 12 * HOUR))
True
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

from simulator import accel
from simulator.clock import DAY, HOUR, MINUTE, SECOND, local_day_number
from simulator.community import PLACES, SimElder
from simulator.plan import Act, DayPlan, DeviceEvent, Draft, Injection, Segment, freeze
from simulator.streets import NODES, Point, Route, inner_neighbours, node_path, street_path


def plan_day(
    elder: SimElder,
    day_start: int,
    seed: int,
    injections: Sequence[Injection] = (),
    battery_start: float | None = None,
    *,
    nuisance: bool = True,
) -> DayPlan:
    """The plan of one local day (``day_start`` = local midnight in epoch ms).

    Every random draw happens before the battery is looked at, so the battery (carried
    from the previous day) changes only whether the evening charge happens, never where
    the elder goes.
    """
    draft = base_draft(elder, day_start, seed, nuisance=nuisance)
    for inj in injections:
        inj.apply(draft)
    return freeze(draft, elder.battery0 if battery_start is None else battery_start)


def day_rng(elder: SimElder, day_start: int, seed: int, stream: int) -> np.random.Generator:
    """The random stream of one elder, day and purpose: independent of other elders."""
    return np.random.default_rng(
        [seed & 0xFFFFFFFF, elder.salt, local_day_number(day_start), stream]
    )


def base_draft(elder: SimElder, day_start: int, seed: int, *, nuisance: bool = True) -> Draft:
    """An ordinary day: sleep, outings, nap, evening charge, pottering, night trips."""
    rng = day_rng(elder, day_start, seed, 1)
    d0 = day_start
    wake = d0 + int((elder.wake_h + rng.normal(0, 0.25)) * HOUR)
    bed = d0 + int(min(elder.bed_h + rng.normal(0, 0.3), 23.5) * HOUR)
    draft = Draft(elder, d0, [Segment(d0, wake, Act.SLEEP), Segment(bed, d0 + DAY, Act.SLEEP)])
    home = elder.home_xy
    stride = 0.5 + 0.1 * ((elder.salt % 97) / 97)  # metres per step
    blocks: list[list[Segment]] = []
    gaps: list[tuple[int, int]] = []

    def clock(h: float) -> int:
        return d0 + int(h * HOUR)

    def free(a: int, b: int) -> bool:
        return (
            wake + 10 * MINUTE <= a
            and b <= bed - 20 * MINUTE
            and not any(
                a < blk[-1].end + 10 * MINUTE and blk[0].start < b + 10 * MINUTE for blk in blocks
            )
        )

    # --- outings: each an out-and-back walk or a loop ---------------------------------
    u = rng.random(8)
    if u[0] < (0.85 if elder.exerciser else 0.5 * elder.mobility):
        t = wake + int(rng.uniform(20, 70) * MINUTE)
        if elder.exerciser:
            speed = rng.uniform(1.1, 1.3)
            target = rng.uniform(110, 125)
            route = _loop(home, elder, rng, rng.uniform(2200, 3600))
            brisk = _walk_outing(draft, t, route, speed, stride * 1.15, target - elder.resting_hr)
            _add(blocks, free, brisk)  # longer strides, ~115-125 steps/min
        else:
            _add(blocks, free, _visit(draft, t, rng, "park", stride, rng.uniform(20, 60)))
    if u[1] < 0.55 * elder.mobility:
        t = clock(rng.uniform(8.5, 10.5))
        _add(blocks, free, _visit(draft, t, rng, "market", stride, rng.uniform(10, 25)))
    if u[2] < 0.7 * elder.mobility:
        t = clock(rng.uniform(15.0, 17.0))
        kind = rng.choice(["park", "service_centre", "residential"], p=[0.5, 0.3, 0.2])
        _add(blocks, free, _visit(draft, t, rng, str(kind), stride, rng.uniform(20, 90)))
    if u[3] < 0.3 * elder.mobility:
        t = clock(rng.uniform(18.4, 19.0))
        route = _loop(home, elder, rng, rng.uniform(800, 1500))
        _add(blocks, free, _walk_outing(draft, t, route, rng.uniform(0.85, 1.0), stride, None))
    # --- nap and evening charge -------------------------------------------------------
    if u[4] < 0.55:
        t = clock(rng.uniform(12.6, 13.4))
        _add(blocks, free, [Segment(t, t + int(rng.uniform(30, 90) * MINUTE), Act.NAP)])
    t = max(
        clock(rng.uniform(19.0, 20.3)), max((b[-1].end for b in blocks), default=0) + 5 * MINUTE
    )
    dur = int(rng.uniform(75, 150) * MINUTE)
    end = min(t + dur, bed - 10 * MINUTE)
    if end - t >= 30 * MINUTE:
        blocks.append([Segment(t, end, Act.CHARGING, charge_u=float(u[5]))])
    # --- coverage gaps on longer walks --------------------------------------------------
    for blk in blocks:
        for s in blk:
            if s.act == Act.WALK and s.end - s.start >= 8 * MINUTE and rng.random() < 0.3:
                length = int(rng.uniform(3, 12) * MINUTE)
                a = s.start + int(rng.uniform(0.1, 0.6) * (s.end - s.start))
                b = min(a + length, s.end - MINUTE)
                if b - a >= 3 * MINUTE:
                    gaps.append((a, b))
    for blk in blocks:
        draft.segments.extend(blk)
    _fill(draft, wake, bed)
    _potter(draft, rng, wake, bed)
    _night_trips(draft, rng, wake, bed)
    draft.gaps = gaps
    if nuisance and u[6] < 0.02:  # the watch's own detector trips on a knock; elder cancels
        t = int(rng.uniform(wake + HOUR, bed - HOUR))
        if not any(a - MINUTE <= t <= b + MINUTE for a, b in gaps):
            burst = accel.knock_burst(rng)
            draft.events.append(DeviceEvent(t, "fall", burst))
            draft.events.append(DeviceEvent(t + int(rng.uniform(8, 40) * SECOND), "cancel"))
    return draft


def _add(blocks: list[list[Segment]], free: Callable[[int, int], bool], blk: list[Segment]) -> None:
    if blk and free(blk[0].start, blk[-1].end):
        blocks.append(blk)
        blocks.sort(key=lambda b: b[0].start)


def _walk_outing(
    draft: Draft, t: int, route: Route, speed: float, stride: float, hr_add: float | None
) -> list[Segment]:
    oid = draft.new_outing()
    end = t + int(route.length / speed * SECOND)
    return [walk(t, end, route, speed, stride, hr_add, oid)]


def walk(
    start: int,
    end: int,
    route: Route,
    speed: float,
    stride: float,
    hr_add: float | None,
    outing: int,
) -> Segment:
    """A walk along ``route``; heart rate by pace unless ``hr_add`` says otherwise."""
    if hr_add is None:
        hr_add = 12.0 + 30.0 * (speed - 0.6)  # ~+18 at a stroll, ~+24 at 1 m/s
    return Segment(
        start,
        end,
        Act.WALK,
        step_rate=speed * 60 / stride,
        hr_add=hr_add,
        route=route,
        speed=speed,
        outdoors=True,
        outing=outing,
    )


def _visit(
    draft: Draft, t: int, rng: np.random.Generator, kind: str, stride: float, dwell_min: float
) -> list[Segment]:
    """Walk to a place, stay there a while, walk back the same way."""
    elder = draft.elder
    places = [p for p in PLACES if p.kind == kind and p.name != elder.compound]
    place = places[int(rng.integers(len(places)))]
    cx, cy = place.centre
    dest = (
        cx + rng.uniform(-0.3, 0.3) * (place.x1 - place.x0),
        cy + rng.uniform(-0.3, 0.3) * (place.y1 - place.y0),
    )
    out = Route.through([elder.home_xy, *street_path(elder.place.gate, place.gate), dest])
    speed = rng.uniform(0.8, 1.05)
    oid = draft.new_outing()
    t1 = t + int(out.length / speed * SECOND)
    t2 = t1 + int(dwell_min * MINUTE)
    t3 = t2 + int(out.length / speed * SECOND)
    dwell = Segment(
        t1, t2, Act.DWELL, step_rate=rng.uniform(2, 8), pos=dest, outdoors=place.outdoor, outing=oid
    )
    return [
        walk(t, t1, out, speed, stride, None, oid),
        dwell,
        walk(t2, t3, out.reversed(), speed, stride, None, oid),
    ]


def _loop(home: Point, elder: SimElder, rng: np.random.Generator, target: float) -> Route:
    """A round walk: out of the gate, along the streets without turning back, home."""
    gate = elder.place.gate
    node = gate.a if rng.random() < 0.5 else gate.b
    pts: list[Point] = [home, gate.point, NODES[node]]
    length, prev = math.dist(gate.point, NODES[node]), -1
    while length < target / 2:
        options = [n for n in inner_neighbours(node) if n != prev]
        nxt = options[int(rng.integers(len(options)))]
        length += math.dist(NODES[node], NODES[nxt])
        prev, node = node, nxt
        pts.append(NODES[node])
    back = min((gate.a, gate.b), key=lambda n: len(node_path(node, n)))
    pts += [NODES[i] for i in node_path(node, back)[1:]]
    pts += [gate.point, home]
    return Route.through(pts)


def _fill(draft: Draft, wake: int, bed: int) -> None:
    """Awake time not otherwise planned is spent at home, sitting (REST)."""
    segs = sorted(draft.segments, key=lambda s: s.start)
    out: list[Segment] = []
    t = draft.day_start
    for s in segs:
        if s.start > t:
            out.append(Segment(t, s.start, Act.REST))
        out.append(s)
        t = max(t, s.end)
    if t < draft.day_end:
        out.append(Segment(t, draft.day_end, Act.REST))
    draft.segments = out


def _potter(draft: Draft, rng: np.random.Generator, wake: int, bed: int) -> None:
    """Short indoor walking bouts (kitchen, toilet, door) while at home and awake."""
    bouts: list[Segment] = []
    t = wake
    while t < bed:
        t += int(rng.exponential(35) * MINUTE) + MINUTE
        dur = int(rng.uniform(1.5, 5) * MINUTE)
        rate = rng.uniform(20, 45)
        bouts.append(Segment(t, t + dur, Act.POTTER, step_rate=rate))
        t += dur
    rests = [(s.start, s.end) for s in draft.segments if s.act == Act.REST]
    starts = [a for a, _ in rests]
    ok = []
    for b in bouts:  # keep the bouts that fall wholly inside a stretch of sitting at home
        k = bisect.bisect_right(starts, b.start) - 1
        if k >= 0 and b.end <= rests[k][1] and b.end < bed:
            ok.append(b)
    draft.insert(*ok)


def _night_trips(draft: Draft, rng: np.random.Generator, wake: int, bed: int) -> None:
    """Getting up at night (toilet): a few dozen steps at home."""
    n = min(int(rng.poisson(0.8)), 3)
    trips = []
    for _ in range(n):
        lo, hi = (
            (draft.day_start + 30 * MINUTE, wake - 20 * MINUTE)
            if rng.random() < 0.6
            else (bed + 40 * MINUTE, draft.day_end - 20 * MINUTE)
        )
        t = int(lo + rng.random() * (hi - lo))
        if hi <= lo:
            continue
        trips.append(
            Segment(
                t,
                t + int(rng.uniform(2, 5) * MINUTE),
                Act.POTTER,
                step_rate=rng.uniform(15, 30),
                hr_add=2.0,
            )
        )
    sleeps = [(s.start, s.end) for s in draft.segments if s.act == Act.SLEEP]
    ok: list[Segment] = []
    for s in sorted(trips, key=lambda s: s.start):
        if any(a <= s.start and s.end <= e for a, e in sleeps) and (not ok or ok[-1].end < s.start):
            ok.append(s)
    draft.insert(*ok)
