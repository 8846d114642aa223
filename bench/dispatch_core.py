"""Dispatch decision latency: the pure core of ``eldercare bench dispatch``.

Method:

1. A synthetic community, made before anything is timed (seeded): ``elders`` homes and
   ``caregivers`` caregivers spread over the 2.4 km square around 杏北社区's centre;
   caregivers with one to three skills (first aid for 40 %), early, middle and late
   shifts or an open clock-in (some off duty), positions 0-15 minutes old (2 % never
   seen), 0-2 active orders out of a maximum of 3.  The clock starts at 10:00 local.
2. ``decisions`` orders, made up front: kinds in a plausible mix (meals most,
   emergencies 5 %), one in ten booked one to three hours ahead, one in ten already
   declined by one or two caregivers, each for a random elder.
3. For each order, on the current state, three timings (``time.perf_counter_ns``
   around the call alone):

   * ``p50_us``/``p99_us``: :func:`orders.dispatch.choose` given the list of
     caregivers -- the columns are built inside the call, as when the shell loads
     the caregivers afresh for each decision (the conservative figure);
   * ``roster_*``: the same call on a prebuilt :class:`~orders.dispatch.Roster`, as
     when the shell keeps the snapshot and updates it on change;
   * ``reference_*`` (first ``reference`` orders): the plain-Python policy, to show
     what numpy buys.

   Each wall-clock time comes with the thread's CPU time for the same call
   (``time.thread_time_ns``): on a shared machine the wall-clock tail is mostly time
   spent descheduled, and the CPU figures say what the code itself costs.

   Then the state moves on as it would live: the chosen caregiver's load goes up by
   one, some busy caregiver finishes an order, the clock advances one second.
4. Garbage collection stays on: a pause is part of a real decision's latency.

>>> r = run(caregivers=40, elders=100, decisions=50, seed=2)
>>> r["decisions"], r["identical_decisions"], r["p99_us"] > 0
(50, True, True)
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

import numpy as np

from alerts.geometry import offset
from orders.catalogue import ServiceKind, Skill
from orders.dispatch import Caregiver, Decision, Roster, Shift, choose, choose_reference
from orders.lifecycle import SYSTEM, Actor, Order, request, transition

FLOOR_P99_US: Final = 5_000.0  # the floor: p99 decision latency <= 5 ms
CENTRE: Final = (34.867, 110.447)  # 杏北社区 (simulator.geo)
HALF_SIDE_M: Final = 1_200.0
START: Final = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 local

KIND_MIX: Final = {
    ServiceKind.MEAL: 0.40,
    ServiceKind.MEDICAL: 0.20,
    ServiceKind.MOBILITY: 0.15,
    ServiceKind.CLEANING: 0.15,
    ServiceKind.BATHING: 0.05,
    ServiceKind.EMERGENCY: 0.05,
}
OTHER_SKILLS: Final = [s for s in Skill if s is not Skill.FIRST_AID]


def _spot(rng: np.random.Generator) -> tuple[float, float]:
    east, north = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M, 2)
    return offset(*CENTRE, float(east), float(north))


def _shifts(rng: np.random.Generator) -> tuple[Shift, ...]:
    day = START - timedelta(hours=10)  # local midnight
    pattern = rng.choice(
        ["early", "middle", "late", "clocked_in", "off"], p=[0.3, 0.3, 0.2, 0.1, 0.1]
    )
    hours = {"early": (6, 14), "middle": (9, 17), "late": (13, 21)}
    if pattern == "off":
        return ()
    if pattern == "clocked_in":
        return (Shift(START - timedelta(hours=float(rng.uniform(0, 3)))),)
    a, b = hours[str(pattern)]
    return (Shift(day + timedelta(hours=a), day + timedelta(hours=b)),)


def community(
    caregivers: int, elders: int, seed: int
) -> tuple[list[Caregiver], list[tuple[float, float]]]:
    """The synthetic caregivers and elder homes (step 1)."""
    rng = np.random.default_rng(seed)
    homes = [_spot(rng) for _ in range(elders)]
    staff = []
    for i in range(1, caregivers + 1):
        skills = set(rng.choice(OTHER_SKILLS, size=int(rng.integers(1, 4)), replace=False))
        if rng.random() < 0.4:
            skills.add(Skill.FIRST_AID)
        seen = rng.random() >= 0.02
        lat, lon = _spot(rng) if seen else (None, None)
        ts = START - timedelta(seconds=float(rng.uniform(0, 900))) if seen else None
        staff.append(
            Caregiver(i, frozenset(skills), _shifts(rng), lat, lon, ts, int(rng.integers(0, 3)), 3)
        )
    return staff, homes


def workload(decisions: int, elders: int, caregivers: int, seed: int) -> list[tuple[Order, int]]:
    """The orders to dispatch, each with its elder's index (step 2)."""
    rng = np.random.default_rng(seed + 1)
    kinds = list(KIND_MIX)
    out = []
    for _ in range(decisions):
        kind = kinds[int(rng.choice(len(kinds), p=list(KIND_MIX.values())))]
        elder = int(rng.integers(elders))
        booked = kind is not ServiceKind.EMERGENCY and rng.random() < 0.1
        when = START + timedelta(hours=float(rng.uniform(1, 3))) if booked else None
        o = request(elder + 1, kind, Actor("staff", 1), START, scheduled_for=when)
        if rng.random() < 0.1:
            for cg in rng.choice(caregivers, size=int(rng.integers(1, 3)), replace=False):
                o = transition(o, "assign", SYSTEM, START, caregiver_id=int(cg) + 1)
                o = transition(o, "expire", SYSTEM, START)
        out.append((o, elder))
    return out


def _timed(call: Callable[[], Decision], wall: list[int], cpu: list[int]) -> Decision:
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    d = call()
    wall.append(time.perf_counter_ns() - t0)
    cpu.append(time.thread_time_ns() - c0)
    return d


def _us(ns: list[int], prefix: str = "") -> dict[str, float]:
    p50, p99 = np.percentile(np.array(ns, dtype=np.float64), [50, 99]) / 1_000
    return {
        f"{prefix}p50_us": round(float(p50), 1),
        f"{prefix}p99_us": round(float(p99), 1),
        f"{prefix}max_us": round(max(ns) / 1_000, 1),
    }


def run(
    caregivers: int = 500,
    elders: int = 5000,
    decisions: int = 5000,
    seed: int = 1,
    reference: int = 500,
) -> dict[str, Any]:
    """Measure decision latency; returns the figures as a dict (module docstring: how)."""
    staff, homes = community(caregivers, elders, seed)
    todo = workload(decisions, elders, caregivers, seed)
    rng = np.random.default_rng(seed + 2)
    # wall and CPU (this thread) nanoseconds: listed, prebuilt roster, plain reference
    ns: dict[str, list[int]] = {k: [] for k in ("l", "lc", "r", "rc", "p", "pc")}
    reasons: Counter[str] = Counter()
    identical = True
    load_before = os.getloadavg()[0]
    gc.collect()
    for n, (o, elder) in enumerate(todo):
        now = START + timedelta(seconds=n)
        where = homes[elder]
        d = _timed(partial(choose, o, where, staff, now), ns["l"], ns["lc"])
        roster = Roster(staff)
        d2 = _timed(partial(choose, o, where, roster, now), ns["r"], ns["rc"])
        identical &= d2 == d
        if n < reference:
            d3 = _timed(partial(choose_reference, o, where, staff, now), ns["p"], ns["pc"])
            identical &= d3.caregiver_id == d.caregiver_id
        reasons[d.reason.value] += 1
        _advance(staff, d, rng)
    out: dict[str, Any] = {
        "caregivers": caregivers,
        "elders": elders,
        "decisions": decisions,
        **_us(ns["l"]),
        **_us(ns["lc"], "cpu_"),
        **_us(ns["r"], "roster_"),
        **_us(ns["rc"], "roster_cpu_"),
        **(_us(ns["p"], "reference_") | _us(ns["pc"], "reference_cpu_") if ns["p"] else {}),
        "floor_p99_us": FLOOR_P99_US,
        "meets_floor": _us(ns["l"])["p99_us"] <= FLOOR_P99_US,
        "identical_decisions": identical,
        "assigned_share": round(reasons["chosen"] / max(1, decisions), 3),
        "reasons": dict(reasons),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        # Other processes compete for the CPU: wall-clock tails grow with this.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": platform.machine(),
    }
    return out


def _advance(staff: list[Caregiver], d: Decision, rng: np.random.Generator) -> None:
    """The state after a decision: the chosen caregiver is busier, someone else is done."""
    if d.caregiver_id is not None:
        i = d.caregiver_id - 1
        c = staff[i]
        staff[i] = replace(c, active_orders=c.active_orders + 1)
    busy = [i for i, c in enumerate(staff) if c.active_orders > 0]
    if busy:
        i = busy[int(rng.integers(len(busy)))]
        c = staff[i]
        staff[i] = replace(c, active_orders=c.active_orders - 1)
