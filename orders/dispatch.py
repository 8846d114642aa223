"""Dispatch policy: which caregiver is offered an order.  Pure: the clock is ``now``.

A caregiver is *eligible* when, in this order (the :class:`Funnel` counts each stage,
so staff see why nobody was found):

1. **qualified** -- holds every skill the kind requires;
2. **on shift** -- now (so they can answer the offer) and, unless the kind is urgent,
   through the whole service: ``[max(now, booked time), + duration]`` inside one shift;
3. **not declined** -- has not rejected this order or let its offer expire, and is not
   in ``exclude``;
4. **has room** -- fewer active orders than their ``max_load``.

Eligible caregivers are ranked by a score in metres, lowest first::

    score = distance + LOAD_PENALTY_M * active_orders + staleness

* ``distance``: great circle from the caregiver's last known position to the elder.
* load, 400 m per active order: an active order is work ahead of this one, but ranking
  purely by expected start would send every order to whichever caregiver is idle,
  however far, and have idle caregivers criss-crossing the community.  400 m is about
  5 minutes on foot or under 2 by e-bike: inside a block the less busy caregiver wins,
  across the community the nearer one still does.  It also bounds the imbalance: the
  winner minimises ``d + P*l``, so by the triangle inequality two caregivers within
  ``D`` metres of each other never differ in load by more than ``D // P + 1``.
  ``max_load`` is the hard cap.
* ``staleness``: a position ``age`` seconds old may be off by what the caregiver has
  walked since; past a 5-minute grace it costs 1 m/s, capped at 2 km (a phone asleep
  should demote a caregiver, not remove them).  A position of unknown age costs the
  cap; no position at all counts as 5 km away: the last resort.

Ties go to the lighter load, then the lower id, so a decision is reproducible.

:func:`choose` works on columns (:class:`Roster`, numpy), building them from a list
if given one; :func:`choose_reference` is the same policy one caregiver at a time, in
plain Python, the readable specification that the tests hold the fast one to.

>>> from datetime import datetime, timezone
>>> from orders.lifecycle import Actor, request
>>> now = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
>>> shift = (Shift(now.replace(hour=0), now.replace(hour=9)),)
>>> near = Caregiver(1, {"first_aid"}, shift, 34.8680, 110.447, now, name="王秀兰")
>>> far = Caregiver(2, {"first_aid"}, shift, 34.8700, 110.447, now, name="李建国")
>>> cook = Caregiver(3, {"meal_delivery"}, shift, 34.8671, 110.447, now, name="张桂英")
>>> order = request(7, "emergency", Actor("staff", 1), now)
>>> d = choose(order, (34.867, 110.447), [far, near, cook], now)
>>> d.caregiver_id, d.reason.value, [round(c.distance_m) for c in d.ranked]
(1, 'chosen', [111, 334])
>>> d.funnel
Funnel(total=3, qualified=2, on_shift=2, not_declined=2, with_room=2)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.geometry import EARTH_RADIUS_M, haversine_m
from orders.catalogue import CATALOGUE, ServiceKind, ServiceSpec, Skill
from orders.lifecycle import Order

LatLon = tuple[float, float]

LOAD_PENALTY_M: Final = 400.0

_BIT: Final[Mapping[Skill, int]] = {s: 1 << i for i, s in enumerate(Skill)}
# A caregiver's Roster row: id, lat, lon, position time (epoch s), load, max load, skills.
_ROW: Final = struct.Struct("<q3d3q")
_ROW_DTYPE: Final = np.dtype(
    [
        ("id", "<i8"),
        ("lat", "<f8"),
        ("lon", "<f8"),
        ("pos_t", "<f8"),
        ("load", "<i8"),
        ("max_load", "<i8"),
        ("skills", "<i8"),
    ]
)
_SPAN: Final = struct.Struct("<2d")  # a shift: start, end (epoch s; end inf if open)
_NAN_SPAN: Final = _SPAN.pack(math.nan, math.nan)


def _mask(skills: Iterable[Skill]) -> int:
    return sum(_BIT[s] for s in set(skills))


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _ts(t: datetime | None) -> float:
    return math.nan if t is None else t.timestamp()


@dataclass(frozen=True, slots=True)
class Shift:
    """A stretch of duty, ``[start, end)``; ``end`` None = clocked in, end not known."""

    start: datetime
    end: datetime | None = None

    def covers(self, a: float, b: float) -> bool:
        """Whether ``[a, b]`` (epoch seconds) lies in the shift (``a`` inside, ``b`` by its end)."""
        end = math.inf if self.end is None else self.end.timestamp()
        return self.start.timestamp() <= a < end and b <= end


@dataclass(frozen=True, slots=True)
class Caregiver:
    """A caregiver as dispatch sees them.  A clock-in flag is ``(Shift(clocked_in_at),)``;
    off duty is ``()``."""

    id: int
    skills: frozenset[Skill]
    shifts: tuple[Shift, ...]
    lat: float | None = None  # last known position, WGS-84
    lon: float | None = None
    position_ts: datetime | None = None
    active_orders: int = 0  # assigned, accepted, en route or in service
    max_load: int = 3
    name: str = ""
    # The bytes a Roster row is made of, packed once here: caregivers are rebuilt when
    # their state changes, and read at every decision.  Not part of equality.
    _packed: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        skills = frozenset(Skill(s) for s in self.skills)
        shifts = tuple(self.shifts)
        object.__setattr__(self, "skills", skills)
        object.__setattr__(self, "shifts", shifts)
        row = _ROW.pack(
            self.id,
            _nan(self.lat),
            _nan(self.lon),
            _ts(self.position_ts),
            self.active_orders,
            self.max_load,
            _mask(skills),
        )
        spans = b"".join(
            _SPAN.pack(s.start.timestamp(), math.inf if s.end is None else s.end.timestamp())
            for s in shifts
        )
        object.__setattr__(self, "_packed", (row, spans))


@dataclass(frozen=True, slots=True)
class Policy:
    """The scoring's knobs (module docstring: what each is for)."""

    load_penalty_m: float = LOAD_PENALTY_M
    fresh_s: float = 300.0
    stale_speed_mps: float = 1.0
    stale_cap_m: float = 2_000.0
    unknown_position_m: float = 5_000.0
    top: int = 5  # how many ranked candidates a decision carries


DEFAULT_POLICY: Final = Policy()


class Reason(StrEnum):
    CHOSEN = "chosen"
    NOBODY_QUALIFIED = "nobody_qualified"
    NOBODY_ON_SHIFT = "nobody_on_shift"
    ALL_DECLINED = "all_declined"
    ALL_AT_CAPACITY = "all_at_capacity"


@dataclass(frozen=True, slots=True)
class Funnel:
    """How many caregivers passed each stage of eligibility."""

    total: int
    qualified: int
    on_shift: int
    not_declined: int
    with_room: int

    def reason(self) -> Reason:
        if self.with_room:
            return Reason.CHOSEN
        if not self.qualified:
            return Reason.NOBODY_QUALIFIED
        if not self.on_shift:
            return Reason.NOBODY_ON_SHIFT
        if not self.not_declined:
            return Reason.ALL_DECLINED
        return Reason.ALL_AT_CAPACITY


@dataclass(frozen=True, slots=True)
class Candidate:
    caregiver_id: int
    distance_m: float | None  # None: position unknown
    active_orders: int
    stale_m: float
    score_m: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Who is offered the order (None: nobody eligible, see ``reason``), and the best
    ``Policy.top`` eligible caregivers in rank order (the first is the chosen one)."""

    caregiver_id: int | None
    reason: Reason
    ranked: tuple[Candidate, ...]
    funnel: Funnel


@dataclass(frozen=True, slots=True)
class _Need:
    """What an order asks of a caregiver, in epoch seconds."""

    skills: frozenset[Skill]
    now: float
    start: float  # the service window a non-urgent order needs covered
    end: float
    urgent: bool
    declined: frozenset[int]


def _need(
    order: Order,
    now: datetime,
    exclude: Collection[int],
    catalogue: Mapping[ServiceKind, ServiceSpec],
) -> _Need:
    spec = catalogue[order.kind]
    t = now.timestamp()
    start = t if order.scheduled_for is None else max(t, order.scheduled_for.timestamp())
    return _Need(
        spec.skills,
        t,
        start,
        start + spec.duration.total_seconds(),
        spec.urgent,
        frozenset(exclude) | order.declined_by,
    )


class Roster:
    """Caregivers as numpy columns.  Build once per change of their state (positions
    arrive, orders are assigned) and reuse it across decisions; immutable."""

    __slots__ = ("end", "ids", "lat", "load", "lon", "max_load", "pos_t", "skills", "start")

    def __init__(self, caregivers: Sequence[Caregiver]) -> None:
        # One join and one frombuffer: converting 500 caregivers' Python numbers one
        # by one costs more than the decision itself.  frombuffer arrays are read-only.
        packed = [c._packed for c in caregivers]
        rec = np.frombuffer(b"".join([p[0] for p in packed]), dtype=_ROW_DTYPE)
        self.ids, self.lat, self.lon = rec["id"], rec["lat"], rec["lon"]
        self.pos_t, self.load = rec["pos_t"], rec["load"]
        self.max_load, self.skills = rec["max_load"], rec["skills"]
        # Shifts as a (caregiver, shift) grid, padded with NaN: every comparison with
        # NaN is False, so padding never puts anyone on shift.
        each = [p[1] for p in packed]
        full = max(map(len, each), default=0) or _SPAN.size
        spans = b"".join(
            [b if len(b) == full else b + _NAN_SPAN * ((full - len(b)) // _SPAN.size) for b in each]
        )
        width = full // _SPAN.size
        grid = np.frombuffer(spans, np.float64).reshape(len(packed), width, 2)
        self.start, self.end = grid[:, :, 0], grid[:, :, 1]

    def __len__(self) -> int:
        return len(self.ids)


def _haversine(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], to: LatLon
) -> npt.NDArray[np.float64]:
    """``alerts.geometry.haversine_m`` over arrays (NaN in, NaN out)."""
    p1, p2 = np.radians(lat), math.radians(to[0])
    dp, dl = p2 - p1, np.radians(to[1] - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dl / 2) ** 2
    d: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return d


def choose(
    order: Order,
    elder_position: LatLon,
    caregivers: Sequence[Caregiver] | Roster,
    now: datetime,
    exclude: Collection[int] = (),
    *,
    policy: Policy = DEFAULT_POLICY,
    catalogue: Mapping[ServiceKind, ServiceSpec] = CATALOGUE,
) -> Decision:
    """The caregiver to offer ``order`` to, with the ranking and the funnel behind it."""
    r = caregivers if isinstance(caregivers, Roster) else Roster(caregivers)
    need = _need(order, now, exclude, catalogue)
    want = _mask(need.skills)
    qualified = (r.skills & want) == want
    on_shift = ((r.start <= need.now) & (need.now < r.end)).any(axis=1)
    if not need.urgent:
        covers = (r.start <= need.start) & (need.start < r.end) & (need.end <= r.end)
        on_shift &= covers.any(axis=1)
    m_shift = qualified & on_shift
    if need.declined:
        m_free = m_shift & ~np.isin(r.ids, np.fromiter(need.declined, np.int64))
    else:
        m_free = m_shift
    m_room = m_free & (r.load < r.max_load)
    funnel = Funnel(
        len(r), int(qualified.sum()), int(m_shift.sum()), int(m_free.sum()), int(m_room.sum())
    )
    idx = np.flatnonzero(m_room)
    if idx.size == 0:
        return Decision(None, funnel.reason(), (), funnel)
    dist = _haversine(r.lat[idx], r.lon[idx], elder_position)
    known = ~np.isnan(dist)
    age = need.now - r.pos_t[idx]  # NaN when the position's time is not known
    drift = np.maximum(0.0, age - policy.fresh_s) * policy.stale_speed_mps
    stale = np.where(known, np.fmin(policy.stale_cap_m, drift), 0.0)  # fmin: NaN -> cap
    load = r.load[idx]
    score = np.where(known, dist, policy.unknown_position_m) + policy.load_penalty_m * load + stale
    best = idx.size if idx.size <= policy.top else policy.top
    rank = np.lexsort((r.ids[idx], load, score))[:best]
    ranked = tuple(
        Candidate(
            int(r.ids[idx[k]]),
            float(dist[k]) if known[k] else None,
            int(load[k]),
            float(stale[k]),
            float(score[k]),
        )
        for k in rank
    )
    return Decision(ranked[0].caregiver_id, Reason.CHOSEN, ranked, funnel)


# --- the same policy, one caregiver at a time ------------------------------------------


def _stage_failed(c: Caregiver, need: _Need) -> str | None:
    """The first eligibility stage ``c`` fails ("qualified", "on_shift", "not_declined",
    "with_room"), or None when eligible."""
    if not need.skills <= c.skills:
        return "qualified"
    if not any(s.covers(need.now, need.now) for s in c.shifts):
        return "on_shift"
    if not need.urgent and not any(s.covers(need.start, need.end) for s in c.shifts):
        return "on_shift"
    if c.id in need.declined:
        return "not_declined"
    if c.active_orders >= c.max_load:
        return "with_room"
    return None


def score(
    c: Caregiver, elder_position: LatLon, now: float, policy: Policy = DEFAULT_POLICY
) -> Candidate:
    """``c``'s candidacy: distance, staleness and score in metres."""
    if c.lat is None or c.lon is None:
        dist, stale, base = None, 0.0, policy.unknown_position_m
    else:
        dist = haversine_m(c.lat, c.lon, *elder_position)
        if c.position_ts is None:
            stale = policy.stale_cap_m  # a position of unknown age: as if very old
        else:
            drift = max(0.0, now - c.position_ts.timestamp() - policy.fresh_s)
            stale = min(policy.stale_cap_m, drift * policy.stale_speed_mps)
        base = dist
    return Candidate(
        c.id, dist, c.active_orders, stale, base + policy.load_penalty_m * c.active_orders + stale
    )


def choose_reference(
    order: Order,
    elder_position: LatLon,
    caregivers: Sequence[Caregiver],
    now: datetime,
    exclude: Collection[int] = (),
    *,
    policy: Policy = DEFAULT_POLICY,
    catalogue: Mapping[ServiceKind, ServiceSpec] = CATALOGUE,
) -> Decision:
    """:func:`choose`, written plainly."""
    need = _need(order, now, exclude, catalogue)
    stages = ("qualified", "on_shift", "not_declined", "with_room")
    passed = dict.fromkeys(stages, 0)
    eligible = []
    for c in caregivers:
        failed = _stage_failed(c, need)
        for s in stages[: stages.index(failed) if failed else len(stages)]:
            passed[s] += 1
        if failed is None:
            eligible.append(score(c, elder_position, need.now, policy))
    funnel = Funnel(len(caregivers), *passed.values())
    eligible.sort(key=lambda k: (k.score_m, k.active_orders, k.caregiver_id))
    ranked = tuple(eligible[: policy.top])
    chosen = ranked[0].caregiver_id if ranked else None
    return Decision(chosen, funnel.reason(), ranked, funnel)
