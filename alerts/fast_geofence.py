"""Parked twin of ``geofence.GeofenceRule`` while the elder is inside every zone.

With no exit open, no zone confirmed outside and no suspect fix held, a fix only
moves the rule's bookkeeping: the last accepted fix, each zone's distance and its
run of outside fixes.  Parked here that is numpy over the batch's fixes: the jump
test, the distance to every zone (circles by haversine, polygons in the rule's own
local projection, ``alerts.geometry``), the zone's time window.  A fix that would be
held as a jump, or would confirm an exit, wakes the rule object, which judges it.

numpy's trigonometry may differ from the ``math`` module's in the last bit, so a
comparison that close to its threshold is redone with the rule's own functions;
the distances the rule keeps are recomputed with them too when it is written back.
Only the default "consecutive fixes" confirmation is parked (``confirm_s`` None).
The rule belongs to another module: the twin goes through its ``snapshot``/
``restore`` state and takes a rule only if that state has the shape described here.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from alerts import geometry, local_time
from alerts.fast_context import _haversine
from alerts.fastpath import POSITION, SOURCES, Samples, StateTwin, Table
from alerts.geofence import GeofenceRule, GeofenceSettings, Zone, _zone_state
from alerts.geometry import EARTH_RADIUS_M, haversine_m, polygon_signed_distance_m

ZONES: Final = 4  # zones a row holds (home and community are the usual two)
KEYS: Final = frozenset({"last_ok", "suspect", "jumps", "zones", "open"})
ZONE_KEYS: Final = frozenset({"key", "out", "run", "run_t0", "dist", "in_since"})
CIRCLE, POLYGON = 1, 2
_K: Final = math.radians(1.0) * EARTH_RADIUS_M  # metres per degree, as geometry.local_xy
_DAY, _HOUR = 86_400.0, 3_600.0


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where a comparison of ``a`` with ``b`` could go either way on the last bits."""
    return np.abs(a - b) <= 1e-6 * (1.0 + np.abs(b))


class GeofenceGroup(StateTwin):
    MIRRORS = (
        GeofenceRule,
        GeofenceSettings,
        Zone,
        _zone_state,
        geometry.haversine_m,
        geometry.local_xy,
        geometry._ring_xy,
        geometry._inside,
        geometry._edge_distance,
        geometry.polygon_signed_distance_m,
        geometry.circle_signed_distance_m,
        local_time.in_window,
        local_time.local_hour,
    )
    FINGERPRINT = "06a08bd2a5a47588"
    name = "geofence_exit"
    kinds = frozenset({POSITION})

    def __init__(self) -> None:
        super().__init__()
        self.rings: list[tuple[np.ndarray, np.ndarray]] = []  # (lat, lon) per distinct ring
        self._ring_ids: dict[tuple[tuple[float, float], ...], int] = {}
        self.cores: list[tuple[float, float, float]] = []  # inscribed disc: lat, lon, radius
        self.kept: list[tuple[int, list[str], list[Any]] | None] = []  # jumps, zone keys, dists

    def columns(self) -> Table:
        nan = ((), np.float64, np.nan)
        z = ((ZONES,), np.float64, np.nan)
        return Table(
            # settings
            sources=((len(SOURCES),), np.bool_, False),
            max_acc=((), np.float64, 200.0),
            acc_factor=((), np.float64, 1.6),
            exit_margin=((), np.float64, 20.0),
            confirm=((), np.int64, 2),
            max_speed=((), np.float64, 3.0),
            offset=((), np.float64, 8.0),
            z_kind=((ZONES,), np.int8, 0),
            z_lat=z,
            z_lon=z,
            z_r=z,
            z_ring=((ZONES,), np.int64, -1),
            z_start=z,  # window [start, end) local hours; NaN: always
            z_end=z,
            # state
            last_t=nan,  # last accepted fix [t, lat, lon, acc]
            last_lat=nan,
            last_lon=nan,
            last_acc=nan,
            run=((ZONES,), np.int64, 0),
            run_t0=z,
            moved=((), np.bool_, False),  # a fix was taken while parked: dists are stale
        )

    def grow(self, cap: int) -> None:
        super().grow(cap)
        self.kept.extend([None] * (cap - len(self.kept)))

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        mine = [(i, r) for i, r in enumerate(rules) if type(r) is GeofenceRule]
        if len(mine) != 1:
            return None
        i, r = mine[0]
        s = r.settings
        st = r.snapshot()
        if set(st) != KEYS or any(set(z) != ZONE_KEYS for z in st["zones"]):
            return None
        if s.confirm_s is not None or not 0 < len(s.zones) <= ZONES:
            return None
        if any(z.window is not None and len(z.window) != 2 for z in s.zones):
            return None
        return (r,), 1 << i

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        picked = self.rules[slot]
        if picked is None:
            return
        s, c = picked[0].settings, self.cols
        c.sources[slot] = [name in s.sources for name in SOURCES]
        c.max_acc[slot], c.acc_factor[slot] = s.max_acc_m, s.acc_factor
        c.exit_margin[slot], c.confirm[slot] = s.exit_margin_m, s.confirm_fixes
        c.max_speed[slot], c.offset[slot] = s.max_speed_mps, s.utc_offset_hours
        for j, z in enumerate(s.zones):
            if z.ring is not None:
                c.z_kind[slot, j], c.z_ring[slot, j] = POLYGON, self._ring(z.ring)
            else:
                c.z_kind[slot, j] = CIRCLE
                c.z_lat[slot, j], c.z_lon[slot, j], c.z_r[slot, j] = z.lat, z.lon, z.radius_m
            if z.window is not None and z.window[0] != z.window[1]:
                c.z_start[slot, j], c.z_end[slot, j] = z.window

    def _ring(self, ring: tuple[tuple[float, float], ...]) -> int:
        """The ring's vertices as ``geometry._ring_xy`` keeps them (no closing repeat)."""
        if ring not in self._ring_ids:
            pts = list(ring)
            if len(pts) > 1 and pts[0] == pts[-1]:
                pts.pop()
            self._ring_ids[ring] = len(self.rings)
            self.rings.append((np.array([p[1] for p in pts]), np.array([p[0] for p in pts])))
            self.cores.append(_core(ring))
        return self._ring_ids[ring]

    # --- fixes --------------------------------------------------------------------------

    def on_positions(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        c = self.cols
        t, lat, lon, acc = s.t, s.lat, s.lon, s.acc
        quiet = np.ones(rows.size, bool)
        usable = c.sources[rows, s.src] & ~(acc > c.max_acc[rows])
        last_t = c.last_t[rows]
        usable &= ~(t < last_t)  # older than the last accepted fix: nothing happens
        # The jump filter: plausible from the last accepted fix, or held as a suspect.
        first = usable & (last_t != last_t)
        judge = np.flatnonzero(usable & ~first)
        r = rows[judge]
        d = _haversine(c.last_lat[r], c.last_lon[r], lat[judge], lon[judge])
        d = d - c.last_acc[r] - acc[judge]
        limit = c.max_speed[r] * np.maximum(t[judge] - c.last_t[r], 1.0)
        ok = d <= limit
        for i in np.flatnonzero(_close(d, limit)).tolist():
            a = [float(c.last_t[r[i]]), float(c.last_lat[r[i]]), float(c.last_lon[r[i]])]
            exact = haversine_m(a[1], a[2], float(lat[judge[i]]), float(lon[judge[i]]))
            exact = exact - float(c.last_acc[r[i]]) - float(acc[judge[i]])
            ok[i] = exact <= float(c.max_speed[r[i]]) * max(float(t[judge[i]]) - a[0], 1.0)
        quiet[judge[~ok]] = False  # a suspect: the object holds it
        accepted = first.copy()
        accepted[judge[ok]] = True
        take = np.flatnonzero(accepted)
        if not take.size:
            return quiet
        # Each zone: outside by more than the fix's accuracy allows, while it applies?
        r, tt, la, lo, ac = rows[take], t[take], lat[take], lon[take], acc[take]
        run = c.run[r].copy()
        run_t0 = c.run_t0[r].copy()
        exits = np.zeros(take.size, bool)
        limit = c.acc_factor[r] * ac + c.exit_margin[r]
        for j in range(ZONES):
            kind = c.z_kind[r, j]
            # Only a zone that applies now can be left, and only the distance decides
            # (the distances the rule keeps are recomputed when it is written back).
            on = np.flatnonzero((kind != 0) & self._active(r, j, tt))
            if not on.size:
                run[:, j], run_t0[:, j] = 0, np.nan
                continue
            dist = np.full(take.size, -np.inf)
            dist[on] = self._distance(r[on], j, la[on], lo[on])
            outside = dist > limit
            for i in on[_close(dist[on], limit[on])].tolist():
                zone = self.rules[int(r[i])][0].settings.zones[j]  # type: ignore[index]
                exact = zone.signed_distance_m(float(la[i]), float(lo[i]))
                outside[i] = exact > float(c.acc_factor[r[i]]) * float(ac[i]) + float(
                    c.exit_margin[r[i]]
                )
            run[:, j] = np.where(outside, run[:, j] + 1, 0)
            run_t0[:, j] = np.where(
                outside, np.where(run_t0[:, j] != run_t0[:, j], tt, run_t0[:, j]), np.nan
            )
            exits |= outside & (run[:, j] >= c.confirm[r])
        quiet[take[exits]] = False  # an exit confirmed: the object opens the episode
        keep = ~exits
        r = r[keep]
        c.last_t[r], c.last_lat[r], c.last_lon[r], c.last_acc[r] = (
            tt[keep],
            la[keep],
            lo[keep],
            ac[keep],
        )
        c.run[r], c.run_t0[r] = run[keep], run_t0[keep]
        c.moved[r] = True
        return quiet

    def _distance(self, rows: np.ndarray, j: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Signed metres outside zone ``j`` of each row (``Zone.signed_distance_m``)."""
        c = self.cols
        out = np.empty(rows.size)
        kind = c.z_kind[rows, j]
        circle = np.flatnonzero(kind == CIRCLE)
        if circle.size:
            rc = rows[circle]
            out[circle] = (
                _haversine(lat[circle], lon[circle], c.z_lat[rc, j], c.z_lon[rc, j]) - c.z_r[rc, j]
            )
        poly = np.flatnonzero(kind == POLYGON)
        for ring in np.unique(c.z_ring[rows[poly], j]).tolist():
            at = poly[c.z_ring[rows[poly], j] == ring]
            ring_lat, ring_lon, (c_lat, c_lon, deep) = *self.rings[ring], self.cores[ring]
            # Well inside the ring's inscribed disc: inside by at least the margin left.
            inner = _haversine(lat[at], lon[at], c_lat, c_lon)
            core = inner < deep
            out[at[core]] = -(deep - inner[core])  # an upper bound: enough to decide
            at = at[~core]
            if at.size:
                out[at] = _polygon(lat[at], lon[at], ring_lat, ring_lon)
        return out

    def _active(self, rows: np.ndarray, j: int, t: np.ndarray) -> np.ndarray:
        """``local_time.in_window(t, zone.window, offset)`` for zone ``j`` of each row."""
        c = self.cols
        start, end = c.z_start[rows, j], c.z_end[rows, j]
        h = ((t + c.offset[rows] * _HOUR) % _DAY) / _HOUR
        inside = np.where(start < end, (start <= h) & (h < end), (h >= start) | (h < end))
        return np.where(start != start, True, inside)

    # --- parking ------------------------------------------------------------------------

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        zones, last = st["zones"], st["last_ok"]
        if set(st) != KEYS or st["open"] is not None or st["suspect"] is not None:
            return False
        if len(zones) > ZONES or any(set(z) != ZONE_KEYS for z in zones):
            return False
        if any(z["out"] or z["in_since"] is not None for z in zones):
            return False
        if any(type(z["run"]) is not int or not _float(z["run_t0"]) for z in zones):
            return False
        if last is not None and (len(last) != 4 or not all(type(x) is float for x in last)):
            return False
        if type(st["jumps"]) is not int:
            return False
        c = self.cols
        c.last_t[slot], c.last_lat[slot], c.last_lon[slot], c.last_acc[slot] = last or [np.nan] * 4
        pad = ZONES - len(zones)
        c.run[slot] = [z["run"] for z in zones] + [0] * pad
        c.run_t0[slot] = [np.nan if z["run_t0"] is None else z["run_t0"] for z in zones] + [
            np.nan
        ] * pad
        c.moved[slot] = False
        self.kept[slot] = (st["jumps"], [z["key"] for z in zones], [z["dist"] for z in zones])
        return True

    def state(self, slot: int) -> dict[str, Any]:
        picked = self.rules[slot]
        kept = self.kept[slot]
        assert picked is not None and kept is not None
        rule = picked[0]
        c = self.cols
        jumps, keys, dists = kept
        last_t = float(c.last_t[slot])
        last = None
        if last_t == last_t:
            last = [last_t, float(c.last_lat[slot]), float(c.last_lon[slot])]
            last.append(float(c.last_acc[slot]))
        zones = []
        for j, key in enumerate(keys):
            dist = dists[j]
            if c.moved[slot]:  # a fix was taken since: the distance to it, as the rule has it
                assert last is not None
                dist = rule.settings.zones[j].signed_distance_m(last[1], last[2])
            t0 = float(c.run_t0[slot, j])
            zones.append(
                {
                    "key": key,
                    "out": False,
                    "run": int(c.run[slot, j]),
                    "run_t0": None if t0 != t0 else t0,
                    "dist": dist,
                    "in_since": None,
                }
            )
        st = {"last_ok": last, "suspect": None, "jumps": jumps, "zones": zones, "open": None}
        return st


def _core(ring: tuple[tuple[float, float], ...]) -> tuple[float, float, float]:
    """A disc inside the ring, less a metre's margin: its points are inside the zone.

    Centred on the vertex mean (if that is inside), with the rule's own distance to
    the edge as radius; the metre covers the difference between the projection
    centred on the point asked about and great-circle distance at this scale.
    """
    lat = sum(p[1] for p in ring) / len(ring)
    lon = sum(p[0] for p in ring) / len(ring)
    d = polygon_signed_distance_m(lat, lon, ring)
    return lat, lon, max(0.0, -d * 0.999 - 5.0)


def _float(v: Any) -> bool:
    return v is None or type(v) is float


def _polygon(
    lat: np.ndarray, lon: np.ndarray, ring_lat: np.ndarray, ring_lon: np.ndarray
) -> np.ndarray:
    """``geometry.polygon_signed_distance_m`` for many points around one ring."""
    x = (
        (ring_lon[None, :] - lon[:, None])
        * _K
        * np.cos(np.radians((ring_lat[None, :] + lat[:, None]) / 2))
    )
    y = (ring_lat[None, :] - lat[:, None]) * _K
    x2, y2 = np.roll(x, -1, axis=1), np.roll(y, -1, axis=1)
    # Ray casting from the point towards +x (even-odd rule), as geometry._inside.
    crosses = (y > 0) != (y2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x + (0 - y) * (x2 - x) / (y2 - y)
    inside = (crosses & (at > 0)).sum(1) % 2 == 1
    # Distance to the nearest edge, as geometry._edge_distance.
    dx, dy = x2 - x, y2 - y
    seg2 = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(seg2 == 0, 0.0, np.maximum(0.0, np.minimum(1.0, -(x * dx + y * dy) / seg2)))
    d = np.hypot(x + u * dx, y + u * dy).min(1)
    return np.where(inside, -d, d)
