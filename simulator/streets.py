"""The street graph of 杏北社区 and walking routes along it.

A grid of four east-west and four north-south streets spans about 1.1 km × 1 km around
the centre; four of them run on beyond the community (that is where a night-time
wanderer ends up).  Coordinates are metres east/north of the centre (see ``geo``).

>>> r = Route.through([(0.0, 0.0), (30.0, 0.0), (30.0, 40.0)])
>>> r.length
70.0
>>> [round(float(v), 1) for v in r.at(np.array([45.0]))[1]]
[15.0]
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

Point = tuple[float, float]

# Grid lines (street centrelines), metres from the centre.
XS = (-540.0, -180.0, 180.0, 540.0)
YS = (-480.0, -160.0, 160.0, 480.0)
OUTER = 1750.0  # where the streets that leave the community end in this model


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    points: tuple[Point, ...]


# Plausible names; the layout is a model of the neighbourhood, not a survey of it.
STREETS: tuple[Street, ...] = (
    Street("杏林北街", ((XS[0], YS[3]), (XS[3], YS[3]))),
    Street("杏北路", ((-OUTER, YS[2]), (OUTER, YS[2]))),
    Street("银杏街", ((XS[0], YS[1]), (XS[3], YS[1]))),
    Street("舜都大道", ((-OUTER, YS[0]), (OUTER, YS[0]))),
    Street("府西街", ((XS[0], YS[0]), (XS[0], YS[3]))),
    Street("电机路", ((XS[1], -OUTER), (XS[1], OUTER))),
    Street("康宁路", ((XS[2], -OUTER), (XS[2], OUTER))),
    Street("东环路", ((XS[3], YS[0]), (XS[3], YS[3]))),
)


def _build_graph() -> tuple[tuple[Point, ...], dict[int, list[tuple[int, float]]], int]:
    """Nodes are street crossings plus the far ends of the outer streets.

    Inner nodes come first (16 grid crossings); the outer ends are dead ends, so
    shortest paths between inner nodes never use them.
    """
    inner = [(x, y) for y in YS for x in XS]
    outer = [
        (-OUTER, YS[2]),
        (OUTER, YS[2]),
        (-OUTER, YS[0]),
        (OUTER, YS[0]),
        (XS[1], -OUTER),
        (XS[1], OUTER),
        (XS[2], -OUTER),
        (XS[2], OUTER),
    ]
    nodes = tuple(inner + outer)
    index = {p: i for i, p in enumerate(nodes)}
    adj: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(nodes))}

    def link(a: Point, b: Point) -> None:
        ia, ib = index[a], index[b]
        d = math.dist(a, b)
        adj[ia].append((ib, d))
        adj[ib].append((ia, d))

    for y in YS:
        for x0, x1 in itertools.pairwise(XS):
            link((x0, y), (x1, y))
    for x in XS:
        for y0, y1 in itertools.pairwise(YS):
            link((x, y0), (x, y1))
    for p in outer:  # each outer end joins the nearest grid crossing on its street
        x, y = p
        near = (XS[0] if x < 0 else XS[3], y) if abs(x) == OUTER else (x, YS[0] if y < 0 else YS[3])
        link(p, near)
    return nodes, adj, len(inner)


NODES, ADJ, N_INNER = _build_graph()


@cache
def _dijkstra(src: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    dist = [math.inf] * len(NODES)
    prev = [-1] * len(NODES)
    dist[src] = 0.0
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, w in ADJ[u]:
            if d + w < dist[v]:
                dist[v], prev[v] = d + w, u
                heapq.heappush(heap, (d + w, v))
    return tuple(dist), tuple(prev)


def node_path(a: int, b: int) -> list[int]:
    """Shortest sequence of nodes from ``a`` to ``b`` (both included)."""
    _, prev = _dijkstra(a)
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def node_distance(a: int, b: int) -> float:
    return _dijkstra(a)[0][b]


@dataclass(frozen=True, slots=True)
class Gate:
    """A point on a street where a compound's path meets it (between nodes a and b)."""

    x: float
    y: float
    a: int
    b: int

    @property
    def point(self) -> Point:
        return (self.x, self.y)


def gate_on_street(x: float, y: float) -> Gate:
    """The gate at (x, y), which must lie on a grid street between two crossings."""
    for u, nbrs in ADJ.items():
        for v, _ in nbrs:
            if u < v and u < N_INNER and v < N_INNER:
                (ax, ay), (bx, by) = NODES[u], NODES[v]
                on_line = (ax == bx == x and min(ay, by) <= y <= max(ay, by)) or (
                    ay == by == y and min(ax, bx) <= x <= max(ax, bx)
                )
                if on_line:
                    return Gate(x, y, u, v)
    raise ValueError(f"({x}, {y}) is not on a grid street")


def street_path(g1: Gate, g2: Gate) -> list[Point]:
    """Shortest polyline along the streets from one gate to another."""
    if {g1.a, g1.b} == {g2.a, g2.b}:
        return [g1.point, g2.point]
    best: tuple[float, int, int] | None = None
    for na in (g1.a, g1.b):
        for nb in (g2.a, g2.b):
            d = (
                math.dist(g1.point, NODES[na])
                + node_distance(na, nb)
                + math.dist(NODES[nb], g2.point)
            )
            if best is None or d < best[0]:
                best = (d, na, nb)
    assert best is not None
    _, na, nb = best
    return [g1.point, *(NODES[i] for i in node_path(na, nb)), g2.point]


def path_to_node(g: Gate, node: int) -> list[Point]:
    """Shortest polyline along the streets from a gate to a node."""
    via = min((g.a, g.b), key=lambda n: math.dist(g.point, NODES[n]) + node_distance(n, node))
    return [g.point, *(NODES[i] for i in node_path(via, node))]


def inner_neighbours(node: int) -> list[int]:
    return [v for v, _ in ADJ[node] if v < N_INNER]


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A polyline walked at some speed: position as a function of distance walked."""

    x: np.ndarray
    y: np.ndarray
    cum: np.ndarray  # distance from the start at each vertex

    @classmethod
    def through(cls, points: Sequence[Point]) -> Route:
        pts = [points[0]]
        for p in points[1:]:  # drop repeated vertices so that ``cum`` strictly increases
            if math.dist(p, pts[-1]) > 1e-6:
                pts.append(p)
        if len(pts) == 1:
            pts.append((pts[0][0] + 1e-3, pts[0][1]))
        arr = np.asarray(pts, dtype=float)
        seg = np.hypot(np.diff(arr[:, 0]), np.diff(arr[:, 1]))
        return cls(arr[:, 0].copy(), arr[:, 1].copy(), np.concatenate([[0.0], np.cumsum(seg)]))

    @property
    def length(self) -> float:
        return float(self.cum[-1])

    @property
    def points(self) -> list[Point]:
        return list(zip(self.x.tolist(), self.y.tolist(), strict=True))

    def at(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions after walking distances ``d`` (clamped to the route)."""
        return np.interp(d, self.cum, self.x), np.interp(d, self.cum, self.y)

    def head(self, d: float) -> Route:
        """The first ``d`` metres of the route."""
        d = min(max(d, 0.0), self.length)
        keep = self.cum < d
        x, y = self.at(np.array([d]))
        pts = list(zip(self.x[keep].tolist(), self.y[keep].tolist(), strict=True))
        return Route.through([*pts, (float(x[0]), float(y[0]))])

    def tail(self, d: float) -> Route:
        """The route after its first ``d`` metres."""
        return self.reversed().head(self.length - d).reversed()

    def reversed(self) -> Route:
        return Route.through(self.points[::-1])

    def then(self, other: Route) -> Route:
        return Route.through(self.points + other.points)
