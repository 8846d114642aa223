"""What the watch measures, given the day plan: vital signs and position fixes.

Vectorised over the sample times of one elder; all randomness comes from the generator
passed in, so the caller decides the random stream (and with it determinism).

Heart rate eases from one activity's level to the next with a 90 s time constant,
rides a small circadian and ultradian swing, and carries ~2 bpm of sensor noise.
Position fixes scatter around the true position with a circular Gaussian whose
68 % radius is the stated ``acc`` (how Android and most chipsets define it), so about
95 % of fixes fall within 1.6 × acc.

>>> import numpy as np
>>> from simulator.community import build_roster
>>> from simulator.elder_model import plan_day
>>> from simulator.clock import local_day_start, HOUR
>>> elder = build_roster(1, seed=3)[0]
>>> day = local_day_start(1795795200000)
>>> plan = plan_day(elder, day, seed=3)
>>> t = day + np.arange(3 * HOUR, 4 * HOUR, 60_000)  # 03:00-04:00 local, asleep
>>> v = vitals(plan, t, np.random.default_rng(0))
>>> bool(40 < v.hr.mean() < elder.resting_hr), bool(v.worn.all())
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.clock import DAY, MINUTE, local_hour
from simulator.geo import to_latlon
from simulator.plan import Act, DayPlan

ACC_TO_SIGMA = 1.0 / 1.5096  # acc = 68 % radius of a 2-D Gaussian = 1.5096 σ
LBS_SHARE = 0.1  # indoors, this share of fixes come from cell towers only
_TWO_PI = 2 * np.pi


@dataclass(frozen=True, slots=True)
class Vitals:
    """One row per sample time; values where the watch is off the wrist are NaN."""

    hr: np.ndarray
    spo2: np.ndarray
    sbp: np.ndarray
    dbp: np.ndarray
    temp: np.ndarray
    rr: np.ndarray
    steps: np.ndarray
    battery: np.ndarray
    worn: np.ndarray


@dataclass(frozen=True, slots=True)
class Fixes:
    lat: np.ndarray
    lon: np.ndarray
    acc: np.ndarray
    src: np.ndarray  # 0 gps, 1 wifi, 2 lbs


SOURCES = ("gps", "wifi", "lbs")


def vitals(plan: DayPlan, t: np.ndarray, rng: np.random.Generator) -> Vitals:
    e = plan.elder
    n = t.size
    z = rng.standard_normal((7, n))
    i = plan.index(t)
    act = plan.act[i]
    h = local_hour(t)
    asleep = act == Act.SLEEP
    walking = act == Act.WALK
    ease = np.exp(-(t - plan.starts[i]) / 90_000.0)
    hr_act = plan.hr_prev[i] * ease + plan.hr_add[i] * (1.0 - ease)
    phase = (e.salt % 628) / 100.0
    hr = (
        e.resting_hr
        + 2.5 * np.cos(_TWO_PI * (h - 15) / 24)
        + 1.5 * np.sin(_TWO_PI * (t % DAY) / (95 * MINUTE) + phase)
        + hr_act
        + 1.8 * z[0]
    )
    spo2 = e.spo2_base - 0.8 * asleep - 0.3 * walking + 0.7 * z[1]
    lo, hi = (88.0, 93.0) if e.hypercapnic else (94.0, 99.0)  # COPD: lower normal range
    spo2 = np.clip(np.round(spo2), lo, hi)
    bp_add = plan.bp_add[i]
    swing = np.cos(_TWO_PI * (h - 10) / 24)  # morning surge, night dip
    # Clipped to what a healthy elder's cuff shows: a normal day scores no NEWS2 point.
    sbp = np.clip(np.round(e.sbp_base + bp_add + 5 * swing + 4 * z[2]), 101, 185)
    dbp = np.clip(np.round(e.dbp_base + 0.55 * bp_add + 3 * swing + 3 * z[3]), 55, 105)
    dbp = np.minimum(dbp, sbp - 25)
    temp = e.temp_base + 0.28 * np.cos(_TWO_PI * (h - 17) / 24) + 0.12 * walking - 0.1 * asleep
    temp = np.clip(temp + 0.07 * z[4], 36.1, 37.2)
    rr = np.clip(np.round(e.rr_base + plan.rr_add[i] + 0.8 * z[5]), 12, 20)
    for ov in plan.overrides:
        m = (t >= ov.start) & (t < ov.end)
        if not m.any():
            continue
        p, tm = ov.params, t[m]
        if ov.kind == "tachycardia":  # paroxysmal: on and off within one sample
            hr[m] = np.clip(p["hr"] + 3.0 * z[6][m], 130, 150)
            rr[m] = np.minimum(rr[m] + 2, 24)
        elif ov.kind == "hypoxia":
            r = np.clip((tm - ov.start) / (5 * MINUTE), 0, 1)
            s = np.round(e.spo2_base + (p["spo2"] - e.spo2_base) * r + 0.7 * z[6][m])
            spo2[m] = np.where(r >= 1, np.clip(s, 85, 89), np.clip(s, 85, 99))
            hr[m] += 8 * r
            rr[m] = np.clip(np.round(rr[m] + 5 * r), 12, 26)
        elif ov.kind == "fever":
            ramp = np.clip(np.minimum(tm - ov.start, ov.end - tm) / (60 * MINUTE), 0, 1)
            tf = temp[m] + (p["peak"] - 36.9) * ramp + 0.1 * z[6][m]
            temp[m] = np.where(ramp >= 1, np.clip(tf, 38.5, 39.5), tf)
            hr[m] += 10 * np.maximum(temp[m] - 37.0, 0)  # ~10 bpm per degree
            rr[m] = np.minimum(rr[m] + np.round(2 * ramp), 24)
    worn = plan.worn[i]
    off = ~worn
    hr = np.clip(np.round(hr), 44, 200)  # a healthy elder asleep: mid-40s at the lowest
    for a in (hr, spo2, sbp, dbp, rr):
        a[off] = np.nan
    temp = np.round(temp, 1)
    temp[off] = np.nan
    return Vitals(hr, spo2, sbp, dbp, temp, rr, plan.steps(t), np.floor(plan.battery(t)), worn)


def fixes(plan: DayPlan, t: np.ndarray, rng: np.random.Generator) -> Fixes:
    """Position fixes at times ``t``: GPS outdoors, wifi (sometimes cell towers) indoors."""
    n = t.size
    u = rng.random((2, n))
    z = rng.standard_normal((2, n))
    i = plan.index(t)
    outdoors = plan.outdoors[i]
    src = np.where(outdoors, 0, np.where(u[0] < LBS_SHARE, 2, 1))
    acc = np.where(
        src == 0,
        np.round(np.clip(np.exp(np.log(6.0) + 0.35 * z[0]), 3.0, 15.0), 1),
        np.where(src == 1, np.round(15 + 25 * u[1]), np.round(200 + 600 * u[1])),
    )
    # Fresh draws for the error itself, independent of the draws that set ``acc``.
    err = rng.standard_normal((2, n)) * (acc * ACC_TO_SIGMA)
    x, y = plan.position(t)
    lat, lon = to_latlon(x + err[0], y + err[1])
    return Fixes(np.round(lat, 6), np.round(lon, 6), acc, src)
