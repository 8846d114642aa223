"""Check-in: is the caregiver at the elder?  A service starts (``arrive``) only when the
caregiver's phone puts them within 150 m of where the elder is.  Pure.

A fix is a circle, not a point: the phone reports a horizontal accuracy (on Android the
radius of 68 % confidence).  Indoors, in the stairwells of a 6-storey block, honest fixes
are often 30-80 m off, so the check gives the benefit of the doubt -- it accepts when
the *nearest* point of the uncertainty circle is within the radius::

    distance - hypot(caregiver accuracy, elder accuracy) <= 150 m

(the two errors are independent, hence the hypot; the allowance is capped at 100 m,
so nothing further than 250 m ever passes).  But a fix so coarse that it proves
nothing at this scale (a cell-tower fix, ±500 m and more) is refused outright -- try
again by a window -- as is a fix older than two minutes (a position from before setting
off must not start the service).  The elder's position is their home for a home service,
or their device's fix for 助行/助急 outdoors, with its own accuracy.

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
>>> home = (34.867, 110.447)
>>> check_in(Fix(34.8685, 110.447, 40.0, now), home, now)  # 167 m off, ±40 m
CheckIn(verdict=<Verdict.ACCEPTED: 'accepted'>, distance_m=166.8, uncertainty_m=40.0)
>>> check_in(Fix(34.8685, 110.447, 5.0, now), home, now).verdict.value  # 167 m, ±5 m
'too_far'
>>> check_in(Fix(34.867, 110.447, 800.0, now), home, now).verdict.value  # cell tower
'coarse_fix'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from alerts.geometry import haversine_m

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Fix:
    """A position fix from the caregiver's phone."""

    lat: float
    lon: float
    accuracy_m: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Policy:
    radius_m: float = 150.0
    max_accuracy_m: float = 100.0  # coarser than this proves nothing at 150 m
    max_age_s: float = 120.0


DEFAULT_POLICY: Final = Policy()


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    TOO_FAR = "too_far"
    COARSE_FIX = "coarse_fix"
    STALE_FIX = "stale_fix"


@dataclass(frozen=True, slots=True)
class CheckIn:
    verdict: Verdict
    distance_m: float  # rounded to 0.1 m, for the record and the caregiver's screen
    uncertainty_m: float

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


def check_in(
    fix: Fix,
    elder: LatLon,
    now: datetime,
    elder_accuracy_m: float = 0.0,
    policy: Policy = DEFAULT_POLICY,
) -> CheckIn:
    """The verdict on ``fix`` as proof of being at ``elder``'s position at ``now``."""
    distance = haversine_m(fix.lat, fix.lon, *elder)
    # Capped, so that a coarse fix of the elder cannot stretch 150 m into a kilometre.
    uncertainty = min(math.hypot(fix.accuracy_m, elder_accuracy_m), policy.max_accuracy_m)
    # abs(): a phone clock far ahead is as untrustworthy as an old fix.
    if abs((now - fix.at).total_seconds()) > policy.max_age_s:
        verdict = Verdict.STALE_FIX
    elif not 0.0 <= fix.accuracy_m <= policy.max_accuracy_m:  # NaN fails too
        verdict = Verdict.COARSE_FIX
    elif distance - uncertainty <= policy.radius_m:
        verdict = Verdict.ACCEPTED
    else:
        verdict = Verdict.TOO_FAR
    return CheckIn(verdict, round(distance, 1), round(uncertainty, 1))
