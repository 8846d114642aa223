"""杏北社区 as the simulator sees it: its outline, compounds, streets and elders.

Pure and deterministic: the same ``(n, seed)`` always gives the same roster, and the
first elders of a larger roster are the elders of a smaller one.

>>> roster = build_roster(3, seed=1)
>>> [(e.key, e.device_id) for e in roster]
[('e0001', 'xb-w0001'), ('e0002', 'xb-w0002'), ('e0003', 'xb-w0003')]
>>> build_roster(3, seed=1) == roster
True
>>> community_geojson()["type"]
'FeatureCollection'
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from simulator.geo import CENTRE_LAT, CENTRE_LON, to_latlon, to_xy
from simulator.streets import STREETS, XS, YS, Gate, Point, gate_on_street

COMMUNITY_NAME = "杏北社区"
# Outline: the street grid plus a margin, one corner cut where the old canal bends.
OUTLINE_XY: tuple[Point, ...] = (
    (-580.0, -520.0),
    (580.0, -520.0),
    (580.0, 440.0),
    (500.0, 520.0),
    (-580.0, 520.0),
    (-580.0, -520.0),
)
_INSET = 20.0  # compounds stop this far from a street's centreline

Kind = Literal["residential", "park", "market", "service_centre"]


@dataclass(frozen=True, slots=True)
class Place:
    """A walled compound or facility: a rectangle with one gate onto a street."""

    name: str
    kind: Kind
    x0: float
    y0: float
    x1: float
    y1: float
    gate_xy: Point
    outdoor: bool = False  # outdoors → GPS fixes while there; indoors → wifi

    @property
    def gate(self) -> Gate:
        return _gate(self.gate_xy)

    @property
    def centre(self) -> Point:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def polygon(self) -> list[Point]:
        return [
            (self.x0, self.y0),
            (self.x1, self.y0),
            (self.x1, self.y1),
            (self.x0, self.y1),
            (self.x0, self.y0),
        ]


@cache
def _gate(xy: Point) -> Gate:
    return gate_on_street(*xy)


def _block(col: int, row: int) -> tuple[float, float, float, float]:
    return XS[col] + _INSET, YS[row] + _INSET, XS[col + 1] - _INSET, YS[row + 1] - _INSET


def _mid(a: float, b: float) -> float:
    return (a + b) / 2


def _places() -> tuple[Place, ...]:
    def res(name: str, col: int, row: int, side: str) -> Place:
        x0, y0, x1, y1 = _block(col, row)
        gate = {
            "S": (_mid(x0, x1), YS[row]),
            "N": (_mid(x0, x1), YS[row + 1]),
            "W": (XS[col], _mid(y0, y1)),
            "E": (XS[col + 1], _mid(y0, y1)),
        }[side]
        return Place(name, "residential", x0, y0, x1, y1, gate)

    sx0, sy0, sx1, sy1 = _block(1, 0)
    px0, py0, px1, py1 = _block(1, 1)
    return (
        res("杏北小区一区", 0, 2, "S"),
        res("杏北小区二区", 1, 2, "S"),
        res("杏北小区三区", 2, 2, "S"),
        res("电机厂家属院", 0, 1, "E"),
        res("银杏苑", 2, 1, "W"),
        res("康宁花园", 0, 0, "N"),
        res("舜都苑", 2, 0, "N"),
        Place("杏北公园", "park", px0, py0, px1, py1, (_mid(px0, px1), YS[2]), outdoor=True),
        Place("杏北农贸市场", "market", sx0, sy0, -10.0, sy1, (_mid(sx0, -10.0), YS[1])),
        Place(
            "杏北社区居家养老服务中心",
            "service_centre",
            10.0,
            sy0,
            sx1,
            sy1,
            (_mid(10.0, sx1), YS[1]),
        ),
    )


PLACES: tuple[Place, ...] = _places()
COMPOUNDS: tuple[Place, ...] = tuple(p for p in PLACES if p.kind == "residential")
PLACE_BY_NAME: dict[str, Place] = {p.name: p for p in PLACES}

# Buildings per compound: 4 columns × 3 rows, numbered 1..12 row by row.
_BCOLS, _BROWS, _UNITS, _FLOORS = 4, 3, 3, 6

_SURNAMES = "王李张刘杨赵郭陈薛卫柴畅吉樊贾任冯孙杜史梁段"  # 畅 and 卫 are common around 永济
# fmt: off
_GIVEN_F = (
    "秀英", "桂兰", "玉兰", "淑珍", "凤英", "秀兰", "桂英", "素芳", "翠花",
    "玉梅", "金花", "彩霞", "改梅", "爱莲", "月娥", "巧云", "秀芳", "玉琴",
    "兰英", "梅", "芳", "英",
)
_GIVEN_M = (
    "建国", "国强", "志刚", "保国", "福生", "满仓", "振华", "德胜", "文明",
    "根生", "来顺", "兴旺", "长山", "永福", "宝山", "治国", "世杰", "天明",
    "忠", "军", "明", "平安",
)
# fmt: on

DEVICE_PREFIX = "xb-w"
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class SimElder:
    """One simulated elder and the traits that drive their day.

    The first block is who they are (what enrolment would know); the second is the
    model's hidden parameters (what only the simulator knows).
    """

    key: str
    device_id: str
    name: str
    gender: Literal["F", "M"]
    birth_year: int
    compound: str
    address: str
    home_lat: float
    home_lon: float
    report_interval_s: float = 60.0
    hypercapnic: bool = False
    # --- model parameters ---
    resting_hr: float = 70.0
    spo2_base: float = 97.0
    sbp_base: float = 130.0
    dbp_base: float = 80.0
    temp_base: float = 36.5
    rr_base: float = 15.0
    wake_h: float = 6.0  # local clock hours
    bed_h: float = 21.8
    mobility: float = 0.7  # 0..1, how likely each usual outing happens
    exerciser: bool = False  # brisk morning walks, HR 110-125
    charge_p: float = 0.9  # chance of charging on an evening (always when low)
    battery0: float = 80.0  # battery at local midnight of the first simulated day
    ts_epoch_ms: bool = False  # device clock format: epoch ms, else RFC 3339 +08:00
    phase_ms: int = 0  # offset of this device's reporting grid

    @property
    def home_xy(self) -> Point:
        x, y = to_xy(self.home_lat, self.home_lon)
        return (float(x), float(y))

    @property
    def place(self) -> Place:
        return PLACE_BY_NAME[self.compound]

    @property
    def salt(self) -> int:
        """A stable number for this elder, to key random streams."""
        return zlib.crc32(self.key.encode())


def build_roster(
    n: int,
    seed: int,
    *,
    report_interval_s: float = 60.0,
    device_prefix: str = DEVICE_PREFIX,
) -> list[SimElder]:
    """``n`` elders living in the community's compounds; deterministic for ``seed``.

    ``device_prefix`` lets tests and parallel runs keep their device ids apart.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if report_interval_s <= 0:
        raise ValueError("report_interval_s must be > 0")
    if not _DEVICE_ID.match(f"{device_prefix}{n:04d}"):
        raise ValueError(f"device prefix {device_prefix!r} gives invalid device ids")
    return [_elder(i, seed, report_interval_s, device_prefix) for i in range(n)]


def _elder(i: int, seed: int, interval_s: float, prefix: str) -> SimElder:
    rng = np.random.default_rng([seed, i, 0x5EED])  # per elder: roster prefixes are stable
    gender: Literal["F", "M"] = "F" if rng.random() < 0.58 else "M"  # more widows than widowers
    given = _GIVEN_F if gender == "F" else _GIVEN_M
    name = _SURNAMES[rng.integers(len(_SURNAMES))] + given[rng.integers(len(given))]
    birth_year = int(np.clip(round(rng.triangular(1935, 1950, 1960)), 1935, 1960))
    place = COMPOUNDS[rng.integers(len(COMPOUNDS))]
    building = int(rng.integers(_BCOLS * _BROWS))
    unit = int(rng.integers(_UNITS))
    floor = int(rng.choice(_FLOORS, p=[0.3, 0.25, 0.18, 0.12, 0.1, 0.05]))  # elders live low
    room = int(rng.integers(1, 3))
    bx = place.x0 + (building % _BCOLS + 0.5) * (place.x1 - place.x0) / _BCOLS
    by = place.y0 + (building // _BCOLS + 0.5) * (place.y1 - place.y0) / _BROWS
    hx, hy = bx + (unit - 1) * 18.0, by + rng.uniform(-4, 4)
    lat, lon = to_latlon(hx, hy)
    address = f"{place.name}{building + 1}号楼{unit + 1}单元{floor + 1}0{room}室"
    hypercapnic = bool(rng.random() < 0.06)
    sbp = float(np.clip(rng.normal(134, 12), 112, 165))
    dbp = float(min(np.clip(rng.normal(79, 7), 60, 95), sbp - 32))
    return SimElder(
        key=f"e{i + 1:04d}",
        device_id=f"{prefix}{i + 1:04d}",
        name=name,
        gender=gender,
        birth_year=birth_year,
        compound=place.name,
        address=address,
        home_lat=round(float(lat), 7),
        home_lon=round(float(lon), 7),
        report_interval_s=float(interval_s),
        hypercapnic=hypercapnic,
        resting_hr=round(float(np.clip(rng.normal(70, 7), 55, 85)), 1),
        spo2_base=round(
            float(rng.uniform(89.5, 91.5) if hypercapnic else rng.uniform(95.8, 97.8)), 1
        ),
        sbp_base=round(sbp, 1),
        dbp_base=round(dbp, 1),
        temp_base=round(float(rng.uniform(36.35, 36.7)), 2),
        rr_base=round(float(rng.uniform(17, 19) if hypercapnic else rng.uniform(14, 17)), 1),
        wake_h=round(float(np.clip(rng.normal(6.0, 0.5), 4.8, 7.5)), 2),
        bed_h=round(float(np.clip(rng.normal(21.7, 0.5), 20.6, 23.0)), 2),
        mobility=round(float(rng.uniform(0.35, 1.0)), 2),
        exerciser=bool(rng.random() < 0.3),
        charge_p=round(float(rng.uniform(0.75, 0.97)), 2),
        battery0=round(float(rng.uniform(55, 100)), 1),
        ts_epoch_ms=bool(rng.random() < 0.35),
        phase_ms=int(rng.integers(int(interval_s * 1000))),
    )


def outline_lonlat() -> list[list[float]]:
    """The community's outline as a closed WGS-84 ring of [lon, lat] pairs."""
    return [_lonlat(p) for p in OUTLINE_XY]


def streets_lonlat() -> list[tuple[str, list[list[float]]]]:
    """Each street's name and centreline as [lon, lat] pairs."""
    return [(s.name, [_lonlat(p) for p in s.points]) for s in STREETS]


def community_geojson() -> dict[str, Any]:
    """Outline, compounds/facilities (polygons with names) and streets (lines) as GeoJSON.

    Coordinates are WGS-84 [lon, lat]; ``properties.kind`` is what the map draws —
    ``outline`` (the community), ``compound`` or ``street`` — and a compound's
    ``properties.use`` says what it is: ``residential``, ``park``, ``market`` or
    ``service_centre``.
    """
    features: list[dict[str, Any]] = [
        _feature(
            "Polygon",
            [outline_lonlat()],
            name=COMMUNITY_NAME,
            kind="outline",
            centre=[CENTRE_LON, CENTRE_LAT],
        )
    ]
    for p in PLACES:
        features.append(
            _feature(
                "Polygon",
                [[_lonlat(q) for q in p.polygon()]],
                name=p.name,
                kind="compound",
                use=p.kind,
                gate=_lonlat(p.gate_xy),
            )
        )
    for name, line in streets_lonlat():
        features.append(_feature("LineString", line, name=name, kind="street"))
    return {"type": "FeatureCollection", "features": features}


def _lonlat(p: Point) -> list[float]:
    lat, lon = to_latlon(p[0], p[1])
    return [round(float(lon), 7), round(float(lat), 7)]


def _feature(geom: str, coords: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": geom, "coordinates": coords},
        "properties": props,
    }
