"""Distances on WGS-84 coordinates in metres, and where a point lies relative to a zone.

Safe zones are a few hundred metres to a few kilometres across, so a sphere of the
mean Earth radius is plenty (the ellipsoid changes distances by < 0.5 %, i.e. under
a metre on a 150 m home zone), and polygons are handled in a local equirectangular
projection centred on the point asked about, exact to centimetres at this scale.
Polygons are GeoJSON-style rings of ``[lon, lat]`` pairs, closed or not; the antimeridian
and the poles are out of scope (this is Shanxi).

Signed distances are positive outside the zone and negative inside, so
``signed > 0`` is "outside by that much" and ``-signed`` is "how deep inside".

>>> round(haversine_m(34.867, 110.447, 34.868, 110.447), 1)  # 0.001 deg of latitude
111.2
>>> square = [(110.446, 34.866), (110.448, 34.866), (110.448, 34.868), (110.446, 34.868)]
>>> point_in_polygon(34.867, 110.447, square), point_in_polygon(34.870, 110.447, square)
(True, False)
>>> round(polygon_signed_distance_m(34.869, 110.447, square), 1)  # 0.001 deg north of it
111.2
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8  # IUGG mean radius
Ring = Sequence[Sequence[float]]  # [[lon, lat], ...], GeoJSON order


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (well conditioned for short distances)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def local_xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    """Metres east and north of ``(lat0, lon0)`` (equirectangular, good to a few km).

    >>> x, y = local_xy(34.867, 110.448, 34.867, 110.447)
    >>> round(x, 1), round(y, 1)
    (91.2, 0.0)
    """
    k = math.radians(1.0) * EARTH_RADIUS_M
    return (lon - lon0) * k * math.cos(math.radians((lat + lat0) / 2)), (lat - lat0) * k


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``/``north_m`` metres from ``(lat, lon)``: ``local_xy``'s inverse.

    >>> lat, lon = offset(34.867, 110.447, 300.0, -120.0)
    >>> [round(v, 6) for v in local_xy(lat, lon, 34.867, 110.447)]
    [300.0, -120.0]
    """
    k = math.radians(1.0) * EARTH_RADIUS_M
    lat2 = lat + north_m / k
    return lat2, lon + east_m / (k * math.cos(math.radians((lat + lat2) / 2)))


def _ring_xy(lat: float, lon: float, ring: Ring) -> list[tuple[float, float]]:
    """The ring's vertices in metres around the query point, without a closing repeat."""
    pts = [local_xy(float(p[1]), float(p[0]), lat, lon) for p in ring]
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    if len(pts) < 3:
        raise ValueError("a polygon ring needs at least three distinct vertices")
    return pts


def _inside(pts: list[tuple[float, float]]) -> bool:
    """Ray casting from the origin towards +x (even-odd rule)."""
    inside = False
    n = len(pts)
    for i in range(n):
        (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
        if (y1 > 0) != (y2 > 0) and x1 + (0 - y1) * (x2 - x1) / (y2 - y1) > 0:
            inside = not inside
    return inside


def _edge_distance(pts: list[tuple[float, float]]) -> float:
    """Distance from the origin to the nearest edge."""
    best = math.inf
    n = len(pts)
    for i in range(n):
        (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
        dx, dy = x2 - x1, y2 - y1
        seg2 = dx * dx + dy * dy
        u = 0.0 if seg2 == 0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / seg2))
        best = min(best, math.hypot(x1 + u * dx, y1 + u * dy))
    return best


def point_in_polygon(lat: float, lon: float, ring: Ring) -> bool:
    """Whether the point lies inside the ring (points exactly on an edge: either answer)."""
    return _inside(_ring_xy(lat, lon, ring))


def distance_to_ring_m(lat: float, lon: float, ring: Ring) -> float:
    """Metres from the point to the ring's nearest edge, inside or out."""
    return _edge_distance(_ring_xy(lat, lon, ring))


def polygon_signed_distance_m(lat: float, lon: float, ring: Ring) -> float:
    """Distance to the boundary of the polygon: positive outside, negative inside."""
    pts = _ring_xy(lat, lon, ring)
    d = _edge_distance(pts)
    return -d if _inside(pts) else d


def circle_signed_distance_m(
    lat: float, lon: float, centre_lat: float, centre_lon: float, radius_m: float
) -> float:
    """Distance to the edge of a circle: positive outside, negative inside.

    >>> round(circle_signed_distance_m(34.868, 110.447, 34.867, 110.447, 150.0), 1)
    -38.8
    """
    return haversine_m(lat, lon, centre_lat, centre_lon) - radius_m
