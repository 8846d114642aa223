"""Accelerometer bursts a wrist device attaches to a ``fall`` event (50 Hz, in g).

A real fall has three phases the server can check: a free-fall dip (|g| well below 1),
an impact spike (3–6 g here), then lying still with gravity on a different axis.  A
knock (arm banged on a table, a hard sit-down) trips the device's own detector too, but
has no free fall and no change of posture: the device sends it, the elder presses
"I'm OK".

>>> import numpy as np
>>> g = np.array(fall_burst(np.random.default_rng(1)))
>>> g.shape
(200, 3)
>>> mag = np.linalg.norm(g, axis=1)
>>> bool(mag.min() < 0.4), bool(3 <= mag.max() <= 6), bool(abs(mag[-25:].mean() - 1) < 0.1)
(True, True, True)
"""

from __future__ import annotations

import numpy as np

HZ = 50
SECONDS = 4.0
PRE_S = 1.4  # the impact comes this long after the burst starts


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v)
    return out


def _upright(rng: np.random.Generator) -> np.ndarray:
    # Wrist hanging or swinging: gravity mostly along the watch's y axis.
    return _unit(np.array([rng.normal(0.1, 0.1), rng.uniform(-1.0, -0.85), rng.normal(0.2, 0.1)]))


def fall_burst(rng: np.random.Generator, *, walking: bool = False) -> list[list[float]]:
    """~4 s around a true fall: gait (or stillness), free fall, impact, lying still."""
    n = int(HZ * SECONDS)
    t = np.arange(n) / HZ
    up = _upright(rng)
    # Lying: gravity on the watch's z or x axis (face up / on its side).
    lie = _unit(np.array([rng.normal(0, 0.15), rng.normal(0, 0.15), rng.choice([-1.0, 1.0])]))
    if rng.random() < 0.5:
        lie = lie[[2, 1, 0]]
    g = np.empty((n, 3))
    t_ff = PRE_S - rng.uniform(0.3, 0.45)  # free fall starts
    before = t < t_ff
    sway = 0.18 if walking else 0.04
    g[before] = up * (1 + sway * np.sin(2 * np.pi * 1.8 * t[before]))[:, None]
    fall = (t >= t_ff) & (t < PRE_S)
    # |g| drops towards a floor between 0.1 and 0.3 g as the body falls freely.
    depth = rng.uniform(0.1, 0.3)
    frac = np.clip((t[fall] - t_ff) / 0.12, 0, 1)
    g[fall] = up * (1 - (1 - depth) * frac)[:, None]
    after = t >= PRE_S
    ta = t[after] - PRE_S
    peak = rng.uniform(3.2, 5.8)
    direction = _unit(0.6 * up + 0.8 * lie + rng.normal(0, 0.2, 3))
    spike = peak * np.exp(-((ta / 0.025) ** 2))  # ~50 ms wide impact
    settle = 0.35 * np.exp(-ta / 0.15) * np.sin(2 * np.pi * 7 * ta)  # body bounce
    blend = np.clip(ta / 0.3, 0, 1)[:, None]
    rest = (1 - blend) * up + blend * lie
    g[after] = rest + direction * spike[:, None] + lie * settle[:, None]
    g += rng.normal(0, 0.015, g.shape)  # sensor noise
    return _peak_at(g, peak)


def knock_burst(rng: np.random.Generator) -> list[list[float]]:
    """~4 s around a knock: a 2.5–3.5 g spike, no free fall, same posture after."""
    n = int(HZ * SECONDS)
    t = np.arange(n) / HZ
    up = _upright(rng)
    g = up * (1 + 0.15 * np.sin(2 * np.pi * 1.6 * t))[:, None]
    ta = t - PRE_S
    peak = rng.uniform(2.5, 3.5)
    spike = (peak - 1) * np.exp(-((ta / 0.02) ** 2))
    g += _unit(rng.normal(0, 1, 3))[None, :] * spike[:, None]
    g += rng.normal(0, 0.015, g.shape)
    return _peak_at(g, peak)


def _peak_at(g: np.ndarray, peak: float) -> list[list[float]]:
    """Scale the strongest sample to exactly ``peak`` g (the spike may fall between samples)."""
    k = int(np.argmax(np.linalg.norm(g, axis=1)))
    g[k] *= peak / np.linalg.norm(g[k])
    out: list[list[float]] = np.round(g, 3).tolist()
    return out
