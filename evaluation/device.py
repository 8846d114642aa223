"""A wearable's on-board fall trigger, played over a recording.

What a cheap microcontroller does (and what the simulator's devices should do):

1. sample the accelerometer at 50 Hz (a 200 Hz recording is averaged in blocks of four,
   which is the low-pass the ADXL345 itself applies at a 50 Hz output rate), in milli-g;
2. keep the last ``pre_s`` seconds in a ring buffer;
3. fire when the magnitude ``|a|`` reaches ``impact_g`` (1.8 g), then *hold the peak*:
   a larger magnitude within ``post_s`` of the current peak moves the burst's centre
   to it, so a walking step just before the real impact does not steal the burst;
4. once ``post_s`` seconds have passed since the peak, send a ``fall`` event stamped at
   the peak with the samples ``[peak - pre_s, peak + post_s]``, and re-arm.

Why this trigger: a magnitude threshold is the one test every fall shares (every fall
in the development set peaks at 1.82 g or more at 50 Hz; the usual 2.5-3 g thresholds
miss 3 % of them, mostly falls from sitting).  It is deliberately permissive: it also
fires on jogging, stairs and sitting down hard, and the server judges the burst.
Free-fall-dip conditions ("a dip below 0.6-0.7 g, then the peak") were tried and cost
more falls than they saved triggers (falls from sitting have little free fall).  The
price is bandwidth: about one burst per 6-10 s of brisk walking or jogging.  A fall's
impact is its largest peak, so its event leaves ``post_s`` after the impact.

A device that has just started cannot fire until its ring buffer holds ``pre_s``.  When
a recording ends inside a burst, the burst is sent if it already holds the 2 s after
the peak the server needs to judge it (``MIN_AFTER_S``), else it is counted as cut off:
a recording stopping is not something a worn device does.

>>> import numpy as np
>>> quiet = np.tile([0.0, -1.0, 0.0], (600, 1))
>>> g = quiet.copy(); g[200] = [0.0, -4.0, 0.0]; g[203] = [0.0, -3.0, 0.0]
>>> bursts, cut_off = detect(g)
>>> [(b.peak_index, b.start_index, b.sent_index, len(b.g)) for b in bursts], cut_off
([(200, 100, 500, 401)], 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.fall_features import MIN_AFTER_S

HZ: Final = 50.0


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    hz: float = HZ
    impact_g: float = 1.8
    pre_s: float = 2.0
    post_s: float = 6.0

    def n(self, seconds: float) -> int:
        return round(seconds * self.hz)


@dataclass(frozen=True, slots=True)
class Burst:
    """One ``fall`` event the device would send."""

    peak_index: int  # sample of the impact: the event's ``ts``
    start_index: int  # first sample of the burst
    sent_index: int  # sample at which the burst is complete and the event leaves
    g: npt.NDArray[np.float64]  # (n, 3) in g, 50 Hz, rounded to 0.001 g


def downsample(g: npt.NDArray[np.float64], factor: int) -> npt.NDArray[np.float64]:
    """Block mean by ``factor`` (200 Hz -> 50 Hz is 4), dropping a ragged tail."""
    n = len(g) // factor
    out: npt.NDArray[np.float64] = g[: n * factor].reshape(n, factor, g.shape[1]).mean(axis=1)
    return out


def detect(
    g: npt.NDArray[np.float64], settings: TriggerSettings | None = None
) -> tuple[list[Burst], int]:
    """The bursts the device sends while recording ``g`` (``(n, 3)`` g at ``settings.hz``),
    and how many the recording's end cut off (0 or 1)."""
    s = settings or TriggerSettings()
    g = np.round(g, 3)  # the device works on, and sends, milli-g
    mag = np.linalg.norm(g, axis=1)
    above = np.flatnonzero(mag >= s.impact_g)
    pre, post, min_post = s.n(s.pre_s), s.n(s.post_s), s.n(MIN_AFTER_S)
    bursts: list[Burst] = []
    armed_from = pre  # the ring buffer must be full
    k = 0
    while True:
        k += int(np.searchsorted(above[k:], armed_from))
        if k >= len(above):
            return bursts, 0
        peak = int(above[k])
        j = peak + 1
        while j < len(mag) and j - peak <= post:
            if mag[j] > mag[peak]:  # peak-hold: a larger magnitude re-centres the burst
                peak = j
            j += 1
        end = min(len(mag), peak + post + 1)
        if end - 1 - peak < min_post:
            return bursts, 1
        start = max(0, peak - pre)
        bursts.append(Burst(peak, start, end - 1, g[start:end]))
        armed_from = end
