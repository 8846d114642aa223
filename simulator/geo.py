"""Local metric coordinates around the community centre.

Everything inside the simulator moves in metres east (``x``) and north (``y``) of the
centre of 杏北社区; only the wire format speaks WGS-84.  A flat projection is exact to a
few centimetres over the few kilometres the simulation covers.

>>> lat, lon = to_latlon(0.0, 0.0)
>>> (lat, lon) == (CENTRE_LAT, CENTRE_LON)
True
>>> x, y = to_xy(*to_latlon(300.0, -120.0))
>>> round(float(x), 6), round(float(y), 6)
(300.0, -120.0)
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

CENTRE_LAT = 34.867
CENTRE_LON = 110.447

_PHI = math.radians(CENTRE_LAT)
# Length of one degree on the WGS-84 ellipsoid at the centre's latitude (series expansion).
M_PER_DEG_LAT = 111_132.954 - 559.822 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111_412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI) + 0.118 * math.cos(5 * _PHI)

F = TypeVar("F", float, np.ndarray)


def to_latlon(x: F, y: F) -> tuple[F, F]:
    """Metres east/north of the centre → (lat, lon) in WGS-84 degrees."""
    return CENTRE_LAT + y / M_PER_DEG_LAT, CENTRE_LON + x / M_PER_DEG_LON


def to_xy(lat: F, lon: F) -> tuple[F, F]:
    """(lat, lon) in WGS-84 degrees → metres east/north of the centre."""
    return (lon - CENTRE_LON) * M_PER_DEG_LON, (lat - CENTRE_LAT) * M_PER_DEG_LAT


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Ground distance in metres between two WGS-84 points near the community.

    >>> round(distance_m(CENTRE_LAT, CENTRE_LON, CENTRE_LAT + 0.001, CENTRE_LON))
    111
    """
    return math.hypot((lon2 - lon1) * M_PER_DEG_LON, (lat2 - lat1) * M_PER_DEG_LAT)
