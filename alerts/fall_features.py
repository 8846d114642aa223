"""Physical features of a fall event's accelerometer burst (the server-side judge's input).

A device that thinks it saw a fall sends a few seconds of 3-axis acceleration around
the impact (``Event.accel``: ``hz`` and ``g`` rows ``[x, y, z]`` in g).  The server
does not trust the device's cheap trigger; it measures what a fall physically is:

- ``peak_g``: the impact, the largest acceleration magnitude in the burst;
- ``impact_ms``: the impact's strength as a velocity change, the area of the
  magnitude above 1 g in the half second from the peak (m/s);
- ``orientation_deg``: how far the gravity vector turned, from the second before the
  fall began (``[-2 s, -1 s]`` before the peak) to the settled posture afterwards
  (``[+1.5 s, +6 s]``).  A fall ends lying down (~90 deg); sitting down hard, jumping or
  a stumble end about where they started;
- ``post_motion_g``: how still the body is afterwards (RMS of the acceleration vector
  around its mean in the settled window); people who fall lie still for a while;
- ``pre_motion_g``: how active the body was before (same measure, pre window).
  Falls from walking come out of motion; lying down on a bed comes out of rest.

The impact is the burst's largest peak that has at least 1.25 s before it and 2 s
after it; a burst whose overall largest peak comes later than that cannot be judged
(``None``: the rule then trusts the device).

Only relative quantities are used (no fixed device axis): the same burst judged on a
waist clip, a pendant or a watch means the same thing.  The windows are in seconds, so
any sample rate works; bursts at a multiple of 50 Hz are averaged down to 50 Hz first,
the rate the model was trained at (what an ADXL345 at 50 Hz output delivers).

>>> import numpy as np
>>> still = np.tile([0.0, -1.0, 0.0], (100, 1))          # 2 s upright at 50 Hz
>>> hit = np.array([[0.0, -0.3, 0.0], [0.5, -3.5, 1.0]])  # free fall, then the impact
>>> lying = np.tile([0.0, 0.0, 1.0], (300, 1))            # 6 s lying still
>>> f = burst_features(np.vstack([still, hit, lying]), 50.0)
>>> round(f.peak_g, 2), round(f.orientation_deg), f.post_motion_g
(3.67, 90, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

MODEL_HZ: Final = 50.0
PRE_S: Final = 2.0  # start of the "before" window, seconds before the peak
FALL_S: Final = 1.0  # a fall takes up to about a second: the "before" window ends here
SETTLE_S: Final = 1.5  # after the peak the body bounces and rolls this long
POST_S: Final = 6.0  # end of the "after" window (longer bursts are cut here)
IMPACT_S: Final = 0.5  # the impact's own duration, for its velocity change
MIN_PRE_S: Final = 0.25  # less "before" than this: no reference posture, cannot judge
MIN_POST_S: Final = 0.5  # less settled "after" than this: cannot judge
MIN_AFTER_S: Final = SETTLE_S + MIN_POST_S  # a burst needs this much after its impact
G: Final = 9.81

FEATURE_NAMES: Final = (
    "peak_g",
    "impact_ms",
    "orientation_deg",
    "post_motion_g",
    "pre_motion_g",
)


@dataclass(frozen=True, slots=True)
class FallFeatures:
    """What the burst shows; every value a physical quantity (see the module doc)."""

    peak_g: float
    impact_ms: float
    orientation_deg: float
    post_motion_g: float
    pre_motion_g: float
    pre_s: float  # how much "before" the burst had (seconds before the peak)
    post_s: float  # how much "after" it had

    def as_dict(self) -> dict[str, float]:
        """Plain, rounded values for a finding's detail (auditable, JSON-able)."""
        return {k: round(v, 4) for k, v in asdict(self).items()}


def to_model_rate(g: npt.ArrayLike, hz: float) -> tuple[npt.NDArray[np.float64], float]:
    """Average a burst down to 50 Hz when its rate is a whole multiple of it.

    >>> a, hz = to_model_rate([[0, 0, 1], [0, 0, 3], [0, 0, 1], [0, 0, 1]], 100.0)
    >>> a.tolist(), hz
    ([[0.0, 0.0, 2.0], [0.0, 0.0, 1.0]], 50.0)
    """
    a = np.asarray(g, dtype=np.float64).reshape(-1, 3)
    ratio = hz / MODEL_HZ
    k = round(ratio)
    if k >= 2 and abs(ratio - k) < 1e-9:
        n = len(a) // k
        # Block mean = the low-pass an accelerometer applies at a lower output rate.
        return a[: n * k].reshape(n, k, 3).mean(axis=1), MODEL_HZ
    return a, hz


def burst_features(g: npt.ArrayLike, hz: float) -> FallFeatures | None:
    """The burst's physical features, or ``None`` when it is too short to judge.

    ``g`` is a sequence of ``[x, y, z]`` rows in g sampled at ``hz``; it is not modified.
    """
    a, hz = to_model_rate(g, hz)

    def n(seconds: float) -> int:
        return max(2, round(seconds * hz))

    svm = np.linalg.norm(a, axis=1)
    lo = n(FALL_S) + n(MIN_PRE_S)  # earliest impact that leaves a posture before the fall
    hi = len(a) - n(SETTLE_S) - n(MIN_POST_S)  # latest that leaves a settled posture after
    if hi <= lo:
        return None
    if int(np.argmax(svm)) >= hi:
        return None  # the largest peak comes too late to see its aftermath: cannot judge
    # The impact is the largest peak with context on both sides.  An even larger one
    # early in the burst is the tail of what an earlier burst already covered.
    p = lo + int(np.argmax(svm[lo:hi]))
    pre = a[max(0, p - n(PRE_S)) : p - n(FALL_S)]
    post = a[p + n(SETTLE_S) : p + n(POST_S) + 1]

    impact = svm[p : p + n(IMPACT_S)]
    return FallFeatures(
        peak_g=float(svm[p]),
        impact_ms=float(np.clip(impact - 1.0, 0.0, None).sum() / hz * G),
        orientation_deg=_angle_deg(pre.mean(axis=0), post.mean(axis=0)),
        post_motion_g=_motion(post),
        pre_motion_g=_motion(pre),
        pre_s=p / hz,
        post_s=(len(a) - 1 - p) / hz,
    )


def _motion(a: npt.NDArray[np.float64]) -> float:
    """RMS distance of the acceleration vectors from their mean: 0 when perfectly still."""
    return float(np.sqrt(((a - a.mean(axis=0)) ** 2).sum(axis=1).mean()))


def _angle_deg(u: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-6 or nv < 1e-6:  # no gravity seen (in free fall all window long): no posture
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v) / (nu * nv)))))
