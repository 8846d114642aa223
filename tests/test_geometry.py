"""Geometry on WGS-84 and the local-time windows the context rules use.

Known distances come from outside this code (the length of a degree on the mean
sphere, published city-to-city distances); shapes are checked against each other
(a 360-gon against the circle it approximates, inside/outside against the sign).
"""

from __future__ import annotations

import doctest
import math
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alerts.geometry
import alerts.local_time
from alerts.geometry import (
    EARTH_RADIUS_M,
    circle_signed_distance_m,
    distance_to_ring_m,
    haversine_m,
    local_xy,
    offset,
    point_in_polygon,
    polygon_signed_distance_m,
)
from alerts.local_time import first_due, in_window, local_hour, next_in_window, window_bounds

LAT, LON = 34.867, 110.447  # 杏北社区
DEG = math.pi * EARTH_RADIUS_M / 180  # one degree of a great circle, ~111,195 m


# --- distances -------------------------------------------------------------------


def test_one_degree_of_latitude_and_of_longitude_at_the_equator() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(DEG, rel=1e-9)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(DEG, rel=1e-9)
    # Longitude shrinks with the cosine of latitude.
    assert haversine_m(60, 10, 60, 10.001) == pytest.approx(0.001 * DEG * 0.5, rel=1e-4)


def test_city_to_city_distance() -> None:
    # Beijing (Tiananmen) to Shanghai (People's Square): about 1,068 km great-circle.
    d = haversine_m(39.9042, 116.4074, 31.2304, 121.4737)
    assert 1_060_000 < d < 1_075_000


def test_haversine_is_symmetric_zero_on_itself_and_stable_at_a_metre() -> None:
    assert haversine_m(LAT, LON, LAT, LON) == 0.0
    a = haversine_m(LAT, LON, 34.9, 110.5)
    assert a == haversine_m(34.9, 110.5, LAT, LON)
    lat, lon = offset(LAT, LON, 0.6, 0.8)  # a 1 m step
    assert haversine_m(LAT, LON, lat, lon) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("east", "north"), [(300.0, 0.0), (0.0, -2000.0), (3000.0, 4000.0)])
def test_local_projection_agrees_with_the_great_circle(east: float, north: float) -> None:
    lat, lon = offset(LAT, LON, east, north)
    x, y = local_xy(lat, lon, LAT, LON)
    assert (x, y) == pytest.approx((east, north), abs=1e-6)
    assert haversine_m(LAT, LON, lat, lon) == pytest.approx(math.hypot(east, north), rel=1e-4)


# --- circles and polygons --------------------------------------------------------


def square(half_m: float) -> list[list[float]]:
    """A square ring of side ``2 * half_m`` centred on the community, [lon, lat] order."""
    corners = [(-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m)]
    out = []
    for e, n in corners:
        lat, lon = offset(LAT, LON, e, n)
        out.append([lon, lat])
    return out


def at(east: float, north: float) -> tuple[float, float]:
    return offset(LAT, LON, east, north)


def test_circle_signed_distance() -> None:
    assert circle_signed_distance_m(*at(0, 0), LAT, LON, 150.0) == pytest.approx(-150.0)
    assert circle_signed_distance_m(*at(0, 470), LAT, LON, 150.0) == pytest.approx(320.0, abs=0.05)
    assert circle_signed_distance_m(*at(-100, 0), LAT, LON, 150.0) == pytest.approx(-50.0, abs=0.05)


def test_point_in_square_and_distances_to_its_edges() -> None:
    ring = square(200)
    assert point_in_polygon(*at(0, 0), ring)
    assert point_in_polygon(*at(190, -190), ring)
    assert not point_in_polygon(*at(210, 0), ring)
    assert polygon_signed_distance_m(*at(0, 0), ring) == pytest.approx(-200.0, abs=0.1)
    assert polygon_signed_distance_m(*at(0, 250), ring) == pytest.approx(50.0, abs=0.1)
    assert polygon_signed_distance_m(*at(150, 0), ring) == pytest.approx(-50.0, abs=0.1)
    # Off a corner the nearest boundary point is the vertex itself.
    assert polygon_signed_distance_m(*at(230, 240), ring) == pytest.approx(50.0, abs=0.1)
    assert distance_to_ring_m(*at(150, 0), ring) == pytest.approx(50.0, abs=0.1)


def test_concave_polygon_notch_is_outside() -> None:
    # An L: the square's north-east quarter cut away.
    pts = [(-200, -200), (200, -200), (200, 0), (0, 0), (0, 200), (-200, 200)]
    ring = [[lon, lat] for lat, lon in (at(e, n) for e, n in pts)]
    assert point_in_polygon(*at(-100, 100), ring)
    assert point_in_polygon(*at(100, -100), ring)
    assert not point_in_polygon(*at(100, 100), ring)  # in the notch
    assert polygon_signed_distance_m(*at(100, 100), ring) == pytest.approx(100.0, abs=0.1)


def test_closed_and_open_rings_are_the_same_polygon() -> None:
    ring = square(200)
    closed = [*ring, ring[0]]
    for p in (at(0, 0), at(0, 250), at(150, -199)):
        assert polygon_signed_distance_m(*p, ring) == polygon_signed_distance_m(*p, closed)


def test_degenerate_ring_is_rejected() -> None:
    with pytest.raises(ValueError):
        point_in_polygon(LAT, LON, [[LON, LAT], [LON + 0.001, LAT], [LON, LAT]])


@settings(max_examples=200, deadline=None)
@given(
    east=st.floats(min_value=-600, max_value=600),
    north=st.floats(min_value=-600, max_value=600),
)
def test_polygon_circle_agrees_with_the_circle(east: float, north: float) -> None:
    """A 360-gon inscribed in a 300 m circle is the circle to within 2.3 cm."""
    ring = []
    for k in range(360):
        a = math.radians(k)
        lat, lon = offset(LAT, LON, 300 * math.cos(a), 300 * math.sin(a))
        ring.append([lon, lat])
    lat, lon = at(east, north)
    poly = polygon_signed_distance_m(lat, lon, ring)
    circle = circle_signed_distance_m(lat, lon, LAT, LON, 300.0)
    assert poly == pytest.approx(circle, abs=0.1)
    if abs(circle) > 0.1:
        assert point_in_polygon(lat, lon, ring) == (circle < 0)


# --- local-time windows ----------------------------------------------------------

MIDNIGHT = 1767542400.0  # 2026-01-05 00:00 local (2026-01-04 16:00 UTC)
H = 3600.0


def test_local_hour_is_utc_plus_8() -> None:
    assert local_hour(MIDNIGHT) == 0.0
    assert local_hour(MIDNIGHT - 1) == pytest.approx(24 - 1 / H)
    assert local_hour(MIDNIGHT + 13.5 * H) == 13.5


@pytest.mark.parametrize(
    ("hour", "window", "inside"),
    [
        (8.0, (8, 20), True),
        (19.99, (8, 20), True),
        (20.0, (8, 20), False),
        (7.5, (8, 20), False),
        (22.0, (21, 6), True),
        (3.0, (21, 6), True),
        (6.0, (21, 6), False),
        (12.0, (21, 6), False),
        (12.0, None, True),
        (12.0, (5, 5), True),
    ],
)
def test_in_window(hour: float, window: tuple[float, float] | None, inside: bool) -> None:
    assert in_window(MIDNIGHT + hour * H, window) is inside


def test_window_bounds_and_next_occurrence() -> None:
    assert window_bounds(MIDNIGHT + 3 * H, (21, 6)) == (MIDNIGHT - 3 * H, MIDNIGHT + 6 * H)
    assert window_bounds(MIDNIGHT + 22 * H, (21, 6)) == (MIDNIGHT + 21 * H, MIDNIGHT + 30 * H)
    assert window_bounds(MIDNIGHT + 12 * H, (21, 6)) is None
    assert next_in_window(MIDNIGHT + 12 * H, (21, 6)) == MIDNIGHT + 21 * H
    assert next_in_window(MIDNIGHT + 21 * H, (8, 20)) == MIDNIGHT + 32 * H


def test_first_due_counts_only_one_window_occurrence() -> None:
    day = (8.0, 21.0)
    # Off at 10:00 -> due 10:30.
    assert first_due(MIDNIGHT + 10 * H, 1800, day) == MIDNIGHT + 10.5 * H
    # Off at 20:45 -> not 21:15 (night), but 08:30 next morning.
    assert first_due(MIDNIGHT + 20.75 * H, 1800, day) == MIDNIGHT + 32.5 * H
    # Off since yesterday evening and asked from 07:00: still 08:30.
    got = first_due(MIDNIGHT - 2 * H, 1800, day, not_before=MIDNIGHT + 7 * H)
    assert got == MIDNIGHT + 8.5 * H
    # A late question gets the time it is asked, if the condition was due by then.
    assert first_due(MIDNIGHT + 9 * H, 1800, day, not_before=MIDNIGHT + 12 * H) == (
        MIDNIGHT + 12 * H
    )
    # A window shorter than the hold never falls due; no window: plain arithmetic.
    assert first_due(MIDNIGHT, 5 * H, (8, 10)) is None
    assert first_due(MIDNIGHT + 20.75 * H, 1800, None) == MIDNIGHT + 21.25 * H


@pytest.mark.parametrize("module", [alerts.geometry, alerts.local_time])
def test_docstring_examples(module: ModuleType) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
