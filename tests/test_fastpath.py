"""The fast path (``alerts.fastpath`` and its twins) decides exactly as the plain path.

``DetectionEngine(fast=False)`` feeds every reading to every rule object and ticks
every rule; the default engine parks quiet rules in numpy rows.  On random streams
-- a few elders, hours of one-minute vitals with episodes of every kind, positions,
events, wear changes, gaps, bursts of several readings a minute, late and reordered
arrivals, random micro-batches and ticks, per-elder thresholds low enough that
episodes open and close -- both engines must give the same findings, in the same
order, the same counters, and the same state (``snapshot``) at the end.  A snapshot
taken mid-stream and restored into a fresh engine must carry on identically.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.engine import DetectionEngine
from alerts.fast_baseline import BaselineGroup
from alerts.fast_context import BatteryGroup, OfflineGroup, WearGroup
from alerts.fast_minute import MinuteGroup, band_scores, medians
from alerts.fastpath import MAX_ROUNDS, Group
from alerts.geometry import offset
from alerts.news2 import PULSE_BANDS, band_score
from alerts.ruleset import ElderProfile
from alerts.vitals_rule import _median
from protocol.messages import AccelBurst, Event, Position, Reading, Status, Vitals
from simulator.community import outline_lonlat

HOME = (34.867, 110.447)
OUTLINE = tuple((float(lon), float(lat)) for lon, lat in outline_lonlat())
Step = tuple[list[tuple[int | None, Reading]], datetime, bool]  # batch, now, tick after


def profile(elder_id: int, rng: random.Random) -> ElderProfile:
    """Per-elder thresholds, often low enough for short streams to open episodes."""
    th: dict[str, dict[str, Any]] = {}
    if rng.random() < 0.3:
        th["vitals"] = {"hypercapnic": True, "on_oxygen": rng.random() < 0.5}
    if rng.random() < 0.3:
        th.setdefault("vitals", {})["min_score"] = rng.choice([1, 2, 3])
    if rng.random() < 0.3:
        th["heart_rate"] = {"rest_high": rng.choice([100.0, 110.0, 120.0])}
    th["baseline"] = {"min_days": rng.choice([0, 0, 1]), "h": rng.choice([2.0, 6.0, 24.0])}
    th["inactivity"] = {"threshold_minutes": rng.choice([20.0, 45.0, 240.0])}
    th["not_worn"] = {"off_minutes": rng.choice([5.0, 30.0])}
    th["offline"] = {"min_silence_s": rng.choice([120.0, 900.0])}
    return ElderProfile(
        elder_id,
        home=HOME if rng.random() < 0.8 else None,
        community_outline=OUTLINE if rng.random() < 0.7 else None,
        thresholds=th,
    )


def elder_readings(e: int, start: datetime, minutes: int, rng: random.Random) -> list[Reading]:
    """One elder's readings: minute vitals through episodes, fixes, events, gaps."""
    dev = f"w{e}"
    out: list[Reading] = []
    seq = 0
    steps = rng.randrange(0, 3000)
    battery = rng.uniform(20, 100)
    worn = True
    mode, left = "normal", 0
    lat, lon = HOME
    metronome = rng.random() < 0.4  # whole seconds, exactly a minute apart: window edges
    for m in range(minutes):
        if left <= 0:
            mode = rng.choices(
                ["normal", "walk", "tachy", "hypoxia", "fever", "off", "gap", "burst", "still"],
                [8, 3, 2, 2, 1, 1, 1, 2, 2],
            )[0]
            # gaps of exactly a window's or a max age's length hit the edges
            left = (
                rng.choice([14, 15, 16, rng.randrange(3, 40)])
                if mode == "gap"
                else rng.randrange(3, 40)
            )
        left -= 1
        t = start + timedelta(minutes=m, seconds=0 if metronome else rng.uniform(0, 59))
        if mode == "gap":
            continue
        if mode == "off" and worn and rng.random() < 0.5:
            out.append(Event(dev, seq, t, "off_wrist"))
            seq += 1
        worn = mode != "off"
        if mode == "walk":
            steps += rng.randrange(20, 120)
            east, north = rng.uniform(-400, 400), rng.uniform(-400, 400)
            lat, lon = offset(*HOME, east, north)
        elif rng.random() < 0.05:
            steps += rng.randrange(1, 8)
        if rng.random() < 0.01:
            steps = rng.randrange(0, 20)  # midnight reset
        battery = max(0.0, battery - rng.uniform(0, 0.3)) if rng.random() > 0.01 else 100.0
        hr = {"walk": rng.uniform(95, 140), "tachy": rng.uniform(118, 145)}.get(
            mode, rng.gauss(72, 6)
        )
        if rng.random() < 0.02:
            hr = rng.choice([35.0, 45.0, 131.0, 130.5, 120.0, 40.0])  # band edges
        spo2 = rng.uniform(84, 92) if mode == "hypoxia" else rng.uniform(93, 99)
        temp = rng.uniform(38.2, 39.6) if mode == "fever" else rng.uniform(36.1, 37.4)
        for k in range(rng.choice([2, 3]) if mode == "burst" else 1):
            tk = t + timedelta(seconds=k * rng.uniform(0.1, 5))
            fields: dict[str, Any] = {"steps": steps, "battery": float(int(battery))}
            if worn:
                fields.update(hr=round(hr), spo2=round(spo2), rr=rng.choice([14.0, 16.0, 22.0]))
                if m % 5 == 0 or mode == "fever":
                    fields["temp"] = round(temp, 1)
                if m % 30 == 0 or rng.random() < 0.02:
                    fields["sbp"] = rng.choice([88.0, 105.0, 125.0, 150.0, 225.0])
                fields["worn"] = True if rng.random() < 0.9 else None
            else:
                fields["worn"] = False
            out.append(Vitals(dev, seq, tk, **fields))
            seq += 1
        if mode == "walk" or m % 10 == 0:
            src = rng.choices(["gps", "wifi", "lbs", "beacon"], [6, 3, 1, 1])[0]
            jitter = offset(lat, lon, rng.gauss(0, 15), rng.gauss(0, 15))
            if rng.random() < 0.03:
                jitter = offset(lat, lon, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
            acc = rng.choice([5.0, 12.0, 40.0, 150.0, 400.0])
            out.append(Position(dev, seq, t + timedelta(seconds=1), *jitter, acc, src))
            seq += 1
        if rng.random() < 0.01:
            kind = rng.choice(
                ["sos", "fall", "cancel", "service", "on_wrist", "low_battery", "power_off"]
            )
            accel = None
            if kind == "fall" and rng.random() < 0.5:
                accel = AccelBurst(hz=50, g=[[0.0, 0.0, 1.0]] * 20 + [[2.5, 1.0, 3.0]] * 5)
            out.append(Event(dev, seq, t + timedelta(seconds=2), kind, accel=accel))
            seq += 1
        if rng.random() < 0.005:
            out.append(Status(dev, t + timedelta(seconds=3), rng.random() < 0.5))
    return out


def scenario(seed: int, elders: int, minutes: int) -> tuple[dict[int, ElderProfile], list[Step]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, rng.randrange(24), tzinfo=UTC)
    profiles = {e: profile(e, rng) for e in range(1, elders + 1)}
    arrivals: list[tuple[datetime, int | None, Reading]] = []
    for e in profiles:
        for r in elder_readings(e, start, minutes, rng):
            delay = timedelta(seconds=rng.uniform(0, 3))
            if rng.random() < 0.01:
                delay = timedelta(minutes=rng.uniform(1, 40))  # buffered upload, late
            arrivals.append((r.ts + delay, e, r))
    if rng.random() < 0.5:
        arrivals.append((start, None, Vitals("unpaired", 0, start, hr=80.0)))
    arrivals.sort(key=lambda a: a[0])
    steps: list[Step] = []
    i = 0
    while i < len(arrivals):
        n = rng.choice([1, 2, 5, 20, 60])
        chunk = arrivals[i : i + n]
        i += n
        batch = [(e, r) for _, e, r in chunk]
        if rng.random() < 0.3:
            rng.shuffle(batch)  # the engine sorts each elder's readings
        now = chunk[-1][0] + timedelta(seconds=rng.uniform(0, 2))
        steps.append((batch, now, rng.random() < 0.4))
    return profiles, steps


def run(engine: DetectionEngine, steps: list[Step]) -> list[Any]:
    out: list[Any] = []
    for batch, now, tick in steps:
        out.append(engine.process(batch, now))
        if tick:
            out.append(engine.tick(now))
    return out


def state(engine: DetectionEngine) -> str:
    return json.dumps(engine.snapshot(only_dirty=False), sort_keys=True, default=str)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    elders=st.integers(1, 4),
    minutes=st.integers(30, 300),
    max_rounds=st.sampled_from([MAX_ROUNDS, 1, 1000]),
)
def test_fast_and_plain_paths_decide_the_same(
    seed: int, elders: int, minutes: int, max_rounds: int
) -> None:
    """``max_rounds``: elders with more readings in a batch are handed to the rule
    objects (buffered uploads); 1000: the fast path takes every one in rounds."""
    profiles, steps = scenario(seed, elders, minutes)
    fast = DetectionEngine(profile_for=profiles.__getitem__, max_rounds=max_rounds)
    plain = DetectionEngine(profile_for=profiles.__getitem__, fast=False)
    assert run(fast, steps) == run(plain, steps)
    assert fast.stats == plain.stats
    assert state(fast) == state(plain)


@pytest.mark.parametrize("seed", [3, 17, 42])
def test_the_numpy_twins_the_kernels_follow_decide_the_same(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled kernels (``alerts.fast_kernels``) replace numpy twins that stay as
    their readable reference: those, taking readings in rounds, decide as the plain
    path too."""
    for cls, numpy_absorb in (
        (BatteryGroup, BatteryGroup.absorb_numpy),
        (OfflineGroup, OfflineGroup.absorb_numpy),
        (WearGroup, WearGroup.absorb_numpy),
        (MinuteGroup, Group.absorb),
        (BaselineGroup, Group.absorb),
    ):
        monkeypatch.setattr(cls, "absorb", numpy_absorb)
        monkeypatch.setattr(cls, "sequential", False)
    monkeypatch.setattr(MinuteGroup, "on_vitals", MinuteGroup.on_vitals_numpy, raising=False)
    monkeypatch.setattr(MinuteGroup, "_push", MinuteGroup._push_numpy)
    monkeypatch.setattr(BaselineGroup, "on_vitals", BaselineGroup.on_vitals_numpy, raising=False)
    profiles, steps = scenario(seed, 3, 240)
    fast = DetectionEngine(profile_for=profiles.__getitem__, max_rounds=1000)
    assert not any(g.sequential for g in fast._fast.groups)  # type: ignore[union-attr]
    plain = DetectionEngine(profile_for=profiles.__getitem__, fast=False)
    assert run(fast, steps) == run(plain, steps)
    assert fast.stats == plain.stats
    assert state(fast) == state(plain)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cut=st.floats(0.1, 0.9))
def test_snapshot_mid_stream_carries_on_identically(seed: int, cut: float) -> None:
    profiles, steps = scenario(seed, 3, 240)
    k = int(len(steps) * cut)
    a = DetectionEngine(profile_for=profiles.__getitem__)
    run(a, steps[:k])
    saved = json.loads(json.dumps(a.snapshot(only_dirty=False), default=str))
    b = DetectionEngine(profile_for=profiles.__getitem__)
    b.restore({int(e): s for e, s in saved.items()})
    reference = DetectionEngine(profile_for=profiles.__getitem__, fast=False)
    reference.restore({int(e): s for e, s in saved.items()})
    assert run(a, steps[k:]) == run(b, steps[k:]) == run(reference, steps[k:])


@pytest.mark.parametrize("max_rounds", [MAX_ROUNDS, 1000])
def test_the_fast_path_is_used(max_rounds: int) -> None:
    """The equivalence above is not vacuous: quiet rules do get parked, every family."""
    profiles, steps = scenario(11, 3, 120)
    engine = DetectionEngine(profile_for=profiles.__getitem__, max_rounds=max_rounds)
    seen: dict[str, float] = {}
    for batch, now, tick in steps:
        engine.process(batch, now)
        if tick:
            engine.tick(now)
        for name, share in engine.parked_share().items():
            seen[name] = max(seen.get(name, 0.0), share)
    assert {"minute", "baseline", "fall", "sos", "fever"} <= set(seen)
    assert min(seen.values()) > 0
    if max_rounds == 1000:
        assert max(engine.parked_share().values()) > 0


@given(st.lists(st.floats(30, 250, allow_nan=False), min_size=1, max_size=4))
def test_vectorised_medians_and_bands_match_the_rules(xs: list[float]) -> None:
    import numpy as np

    v = np.zeros((1, 1, 4))
    v[0, 0, : len(xs)] = xs
    assert medians(v, np.array([[len(xs)]]))[0, 0] == _median(xs)
    uppers = np.array([u for u, _ in PULSE_BANDS])
    scores = np.array([s for _, s in PULSE_BANDS])
    assert band_scores(np.array(xs), (uppers, scores)).tolist() == [
        band_score(x, PULSE_BANDS) for x in xs
    ]


@given(st.floats(1.6e9, 2.2e9, allow_nan=False))
def test_numpy_minutes_match_python(t: float) -> None:
    import numpy as np

    assert int(np.floor_divide(np.array([t]), 60.0).astype(np.int64)[0]) == int(t // 60)


def test_the_aggregate_keeps_a_value_exactly_max_age_old() -> None:
    """A blood pressure exactly ``max_age_minutes`` (240) old still counts: the minute it
    meets a raised pulse is abnormal for the aggregate on both paths."""
    t0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    steps: list[Step] = []
    for m in range(242):
        fields: dict[str, Any] = {"hr": 115.0 if m == 240 else 70.0, "spo2": 97.0, "rr": 16.0}
        if m == 0:
            fields["sbp"] = 88.0  # NEWS2 3
        r = Vitals("w1", m, t0 + timedelta(minutes=m), worn=True, **fields)
        steps.append(([(1, r)], r.ts, True))
    engines = [DetectionEngine(), DetectionEngine(fast=False)]
    outs = [run(e, steps) for e in engines]
    assert outs[0] == outs[1]
    assert state(engines[0]) == state(engines[1])
    window = engines[1].snapshot(only_dirty=False)[1]["rules"]["news2_partial"]["sustain"]
    assert [e[1] for e in window["window"] if e[0] == (t0.timestamp() // 60) + 240] == [1]


def test_every_twin_is_engaged() -> None:
    """A twin of a rule in another module stands down when that rule's code changes.

    If this fails, a rule listed below was edited: check its twin against it
    (re-engage it and run ``test_fast_and_plain_paths_decide_the_same``), then set
    the twin's ``FINGERPRINT`` to ``fingerprint(*MIRRORS)``.  Until then that rule
    runs on the plain path: correct, but slower.
    """
    from alerts.fastpath import FastPath, fingerprint

    stood_down = {
        g.name: fingerprint(*g.MIRRORS) for g in FastPath(lambda d: None).groups if not g.engaged
    }
    assert stood_down == {}
