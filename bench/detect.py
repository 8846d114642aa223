"""``eldercare bench detect``: readings per second through the detection core alone.

Method:

1. A realistic stream, made before anything is timed: the simulator's community
   (``simulator.stream.generate``, every scenario kind injected a few times: falls,
   SOS, tachycardia, hypoxia, fever, wandering, ...) decoded as the ingest decodes it
   (``protocol.decode``).  Per elder: vitals every 60 s (pulse, SpO2, respiration
   each sample, temperature every 5 min, blood pressure every 30 min, steps, battery,
   worn), a position every 30 s outdoors and every 10 min at home, the odd event.
   Profiles as enrolment records them: home, community outline, COPD (SpO2 scale 2).
2. The stream in arrival order, cut into micro-batches of ``batch`` readings (2,000),
   each fed to ``DetectionEngine.process`` with ``now`` = its last arrival, and
   ``tick`` whenever 10 simulated seconds have passed since the last one -- what
   ``ingest.detection`` does live.
3. The first ``warmup_min`` simulated minutes are not timed (every elder's detector
   is created and the fast path has parked the quiet rules); the rest is, on the
   process's CPU clock (the machine is shared) and on the wall clock.
4. The same readings through the plain path (``DetectionEngine(fast=False)``: every
   reading to every rule, every rule on every tick) for the first ``compare_min``
   timed minutes, in the same process, so that both rates come from the same
   machine state; the findings of both paths are compared there.

>>> r = run_core(20, 0.2, seed=3, batch=100, warmup_min=2.0, compare_min=3.0)
>>> r["identical_findings"], r["readings"] > 100
(True, True)
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.core import Finding
from alerts.engine import DetectionEngine, settle_heap
from alerts.ruleset import ElderProfile
from protocol.decode import Limits, decode
from protocol.messages import Reading
from protocol.topics import parse_topic
from simulator.community import SimElder, build_roster, outline_lonlat
from simulator.scenarios import SCENARIOS, schedule
from simulator.stream import generate

FLOOR = 200_000  # readings/s through the core (the detection issue's floor)
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 06:00 local: wake-up, walks, meals
TICK_S = 10.0

Batch = tuple[list[tuple[int | None, Reading]], datetime]


def profiles(roster: Sequence[SimElder]) -> dict[int, ElderProfile]:
    """What enrolment records for each simulated elder (elder id = roster index + 1)."""
    outline = tuple((float(lon), float(lat)) for lon, lat in outline_lonlat())
    out = {}
    for i, e in enumerate(roster, start=1):
        copd = {"vitals": {"hypercapnic": True}} if e.hypercapnic else {}
        out[i] = ElderProfile(
            i,
            home=(e.home_lat, e.home_lon),
            community_outline=outline,
            report_interval_s=round(e.report_interval_s),
            thresholds=copd,
        )
    return out


def stream(elders: int, hours: float, seed: int, batch: int = 2000) -> tuple[list[Batch], Any]:
    """The micro-batches of the simulated community's traffic, decoded; and the roster."""
    roster = build_roster(elders, seed)
    duration = timedelta(hours=hours)
    plan = schedule(roster, START, duration, seed, list(SCENARIOS) * max(1, elders // 500))
    ids = {e.device_id: i for i, e in enumerate(roster, start=1)}
    limits = Limits(max_payload_bytes=1 << 26, max_backfill=duration + timedelta(days=1))
    batches: list[Batch] = []
    items: list[tuple[int | None, Reading]] = []
    for m in generate(roster, START, duration, seed, plan.scenarios):
        parsed = parse_topic(m.topic)
        if parsed is None:
            continue
        device_id, channel = parsed
        d = decode(channel, m.payload, device_id=device_id, received_at=m.sim_time, limits=limits)
        elder = ids.get(device_id)
        items.extend((elder, r) for r in d.readings)
        if len(items) >= batch:
            batches.append((items, m.sim_time))
            items = []
    if items:
        batches.append((items, START + duration))
    return batches, roster


def _drive(
    engine: DetectionEngine, batches: Sequence[Batch], last_tick: list[datetime]
) -> list[list[tuple[int, Finding]]]:
    """Feed the batches, ticking every ``TICK_S``; the findings of each batch."""
    out = []
    for items, now in batches:
        found = engine.process(items, now)
        if now - last_tick[0] >= timedelta(seconds=TICK_S):
            found += engine.tick(now)
            last_tick[0] = now
        out.append(found)
    return out


def _timed(
    engine: DetectionEngine, batches: Sequence[Batch], last_tick: list[datetime]
) -> tuple[list[list[tuple[int, Finding]]], float, float]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    found = _drive(engine, batches, last_tick)
    return found, time.process_time() - cpu, time.perf_counter() - wall


def _split(batches: Sequence[Batch], minutes: float) -> int:
    """Index of the first batch ``minutes`` after the stream's start."""
    end = START + timedelta(minutes=minutes)
    return next((i for i, (_, now) in enumerate(batches) if now >= end), len(batches))


def run_core(
    elders: int = 5000,
    hours: float = 2.0,
    seed: int = 7,
    *,
    batch: int = 2000,
    warmup_min: float = 15.0,
    compare_min: float = 10.0,
) -> dict[str, Any]:
    """Measure the core on ``elders`` x ``hours`` of simulated traffic (see the module doc)."""
    made = time.perf_counter()
    batches, roster = stream(elders, hours, seed, batch)
    made = time.perf_counter() - made
    by_id = profiles(roster)
    w = _split(batches, warmup_min)
    c = _split(batches, warmup_min + compare_min)
    n = sum(len(items) for items, _ in batches[w:])
    n_cmp = sum(len(items) for items, _ in batches[w:c])

    # The plain path: every reading to every rule, every rule on every tick.
    plain = DetectionEngine(profile_for=by_id.__getitem__, fast=False)
    tick = [START]
    plain_warm = _drive(plain, batches[:w], tick)
    plain_found, plain_cpu, _ = _timed(plain, batches[w:c], tick)
    del plain

    fast = DetectionEngine(profile_for=by_id.__getitem__)
    tick = [START]
    warm_wall = time.perf_counter()
    fast_warm = _drive(fast, batches[:w], tick)
    warm_wall = time.perf_counter() - warm_wall
    settle_heap()  # what the detection process does once started
    found, cpu, wall = _timed(fast, batches[w:], tick)
    same = fast_warm + found[: c - w] == plain_warm + plain_found
    cpu, wall, plain_cpu = max(cpu, 1e-6), max(wall, 1e-6), max(plain_cpu, 1e-6)

    kinds = Counter(type(r).__name__ for items, _ in batches[w:] for _, r in items)
    timed = batches[w:]
    return {
        "core_readings_per_s": round(n / cpu),
        "core_readings_per_s_wall": round(n / wall),
        "plain_readings_per_s": round(n_cmp / plain_cpu) if n_cmp else None,
        "speedup": round((n / cpu) / (n_cmp / plain_cpu), 1) if n_cmp else None,
        "floor": FLOOR,
        "meets_floor": n / cpu >= FLOOR,
        "identical_findings": same,
        "readings": n,
        "readings_by_type": dict(kinds),
        "elders": elders,
        "simulated_hours": hours,
        "timed_minutes": round((timed[-1][1] - timed[0][1]).total_seconds() / 60, 1)
        if timed
        else 0.0,
        "batches": len(timed),
        "batch_readings": batch,
        "tick_s": TICK_S,
        "findings": sum(map(len, found)),
        "findings_by_kind": dict(Counter(f.kind for fs in found for _, f in fs)),
        "plain_compared_readings": n_cmp,
        "parked_share": fast.parked_share(),
        "engine": {
            "late_skipped": fast.stats.late_skipped,
            "stale_dropped": fast.stats.stale_dropped,
            "rule_errors": fast.stats.rule_errors,
        },
        "seconds": {
            "generate": round(made, 1),
            "warmup_wall": round(warm_wall, 2),
            "timed_cpu": round(cpu, 2),
            "timed_wall": round(wall, 2),
            "plain_cpu": round(plain_cpu, 2),
        },
        "seed": seed,
        "method": (
            "simulated community decoded as ingest does; micro-batches of "
            f"{batch} readings in arrival order, tick every {TICK_S:.0f} simulated s; "
            f"first {warmup_min:g} simulated min untimed; CPU time of this process; "
            f"plain path (fast=False) on the next {compare_min:g} min in the same run"
        ),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def render_core(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"detection core: {r['elders']:,} elders, {r['readings']:,} readings over "
        f"{r['timed_minutes']:g} simulated min ({r['batches']} batches of "
        f"{r['batch_readings']:,}, tick every {r['tick_s']:g} s)",
        f"{'core (fast path)':24}{r['core_readings_per_s']:>12,} readings/s CPU"
        f"  ({r['core_readings_per_s_wall']:,}/s wall)",
    ]
    if r["plain_readings_per_s"] is not None:
        lines.append(
            f"{'plain path, same run':24}{r['plain_readings_per_s']:>12,} readings/s CPU"
            f"  (x{r['speedup']} faster; findings identical: {r['identical_findings']})"
        )
    met = "met" if r["meets_floor"] else "MISSED"
    lines.append(f"floor: >= {r['floor']:,} readings/s ({met}); findings: {r['findings']}")
    if r["parked_share"]:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in r["parked_share"].items())
        lines.append(f"rules parked in the fast path at the end: {shares}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.detect [elders] [hours]
    import json
    import sys

    args = [float(a) for a in sys.argv[1:3]]
    res = run_core(int(args[0]) if args else 5000, args[1] if len(args) > 1 else 2.0)
    print(render_core(res))
    print(json.dumps(res, indent=1, default=str), file=sys.stderr)
