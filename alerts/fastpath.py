"""The vectorised stage of the detection core: quiet rules of all elders as numpy rows.

Most of the time an elder's rules have nothing to say: no episode is open and the
new reading is unremarkable.  Feeding such a reading to a dozen Python objects costs
tens of microseconds; doing the same state update for every elder of a micro-batch
at once, as a few numpy operations over per-elder rows, costs about one.

A *group* (``alerts.fast_*``) is the vectorised twin of one rule family.  Per elder
it is either

* **awake**: the rule objects are the truth and the engine calls them as usual; or
* **parked**: the group's arrays hold the fields a quiet reading can change, and
  everything else stays in the objects.  The group takes a reading only when it can
  prove the rule would say nothing about it (it computes what the rule would compute
  and checks); otherwise it writes its rows back into the objects (*wakes* them)
  and the engine feeds them that reading and the rest of the batch.

So the findings are the plain path's by construction: parked rules never speak, and
any reading that could make them speak is given to the real rule objects, in order.
A group parks an elder's rules only when they are quiet (``load`` + ``confirm``) and
writes them back (``store``) whenever the engine or a caller needs the objects:
snapshots, restores, reconfiguration, ``DetectionEngine.detectors``.

The coordinator here keeps the slot (row) of every elder, pulls the numbers out of
the batch's readings once (``Samples``, in slot order: the rows are then visited in
memory order), and lets each group take what it can: an elder's readings a group
cares about are handed over in rounds, the first of every elder, then the second,
..., so that each group sees them in event-time order -- or, to a ``sequential``
group (a compiled kernel that walks the readings one by one), all at once.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, get_args

import numpy as np

from protocol.messages import Event, EventType, Position, Reading, Source, Status, Vitals

if TYPE_CHECKING:
    from alerts.engine import ElderDetector

RETRY_S = 60.0  # a rule that could not be parked is tried again this much later
AFTER_WAKE_S = 60.0  # a rule that just had something to say stays awake a while
# An elder's readings in one batch are taken in rounds (one per elder each), and a
# round costs about the same however few elders are in it.  Most elders have one or
# two readings in a batch; the few with a buffered upload (tens) would cost a dozen
# rounds for a handful of rows each -- half of the fast path's time.  Their rules are
# handed back instead: the plain path takes the upload, and they are parked again
# (except those of ``sequential`` groups, which take any number in one call).
MAX_ROUNDS = 3

VITALS, POSITION, EVENT, STATUS = 0, 1, 2, 3
_KIND: Final = {Vitals: VITALS, Position: POSITION, Event: EVENT, Status: STATUS}
EVENTS: Final = {name: i for i, name in enumerate(get_args(EventType))}
SOURCES: Final = {name: i for i, name in enumerate(get_args(Source))}
_VITALS: Final = ("hr", "spo2", "sbp", "rr", "temp", "steps", "battery", "worn")
_VITAL_FIELDS: Final = attrgetter(*_VITALS)
_FIX_FIELDS: Final = tuple((f, attrgetter(f)) for f in ("lat", "lon", "acc"))


@dataclass(slots=True)
class Samples:
    """Columns of a list of readings.  NaN (or -1 for codes) where a field is absent."""

    t: np.ndarray  # event time, epoch seconds
    kind: np.ndarray  # VITALS, POSITION, EVENT, STATUS
    hr: np.ndarray
    spo2: np.ndarray
    sbp: np.ndarray
    rr: np.ndarray
    temp: np.ndarray
    steps: np.ndarray  # cumulative step count (exact in float64)
    battery: np.ndarray
    worn: np.ndarray  # 1.0 worn, 0.0 off the wrist, NaN not said
    lat: np.ndarray
    lon: np.ndarray
    acc: np.ndarray
    src: np.ndarray  # SOURCES code
    event: np.ndarray  # EVENTS code
    online: np.ndarray  # Status.online (False elsewhere)

    @classmethod
    def of(cls, readings: list[Reading], t: np.ndarray | None = None) -> Samples:
        """``t``: the event times, if known already."""
        n = len(readings)
        if t is None:
            t = np.fromiter((r.ts.timestamp() for r in readings), np.float64, n)
        kind = np.fromiter(map(_KIND.__getitem__, map(type, readings)), np.int8, n)
        nan = np.full(n, np.nan)
        cols: dict[str, np.ndarray] = {}
        vit = np.flatnonzero(kind == VITALS)
        if vit.size:
            rs = readings if vit.size == n else [readings[i] for i in vit.tolist()]
            # numpy turns None into NaN for float arrays: one C loop for all fields.
            got = np.array(list(map(_VITAL_FIELDS, rs)), np.float64).T.copy()
            for f, col in zip(_VITALS, got, strict=True):
                if vit.size < n:
                    cols[f] = nan.copy()
                    cols[f][vit] = col
                else:
                    cols[f] = col
        pos = np.flatnonzero(kind == POSITION)
        code = np.full(n, -1, np.int8)
        if pos.size:
            ps = [readings[i] for i in pos.tolist()]
            for f, get in _FIX_FIELDS:  # never None: a C loop per field
                cols[f] = nan.copy()
                cols[f][pos] = np.fromiter(map(get, ps), np.float64, pos.size)
            cols["src"] = code.copy()
            cols["src"][pos] = [SOURCES[p.src] for p in ps]
        ev = np.flatnonzero(kind == EVENT)
        if ev.size:
            cols["event"] = code.copy()
            cols["event"][ev] = [EVENTS[readings[i].type] for i in ev.tolist()]
        st = np.flatnonzero(kind == STATUS)
        cols["online"] = np.zeros(n, bool)
        if st.size:
            cols["online"][st] = [readings[i].online for i in st.tolist()]
        return cls(
            t=t,
            kind=kind,
            **{f: cols.get(f, nan) for f in ("hr", "spo2", "sbp", "rr", "temp", "steps")},
            **{f: cols.get(f, nan) for f in ("battery", "worn", "lat", "lon", "acc")},
            src=cols.get("src", code),
            event=cols.get("event", code),
            online=cols["online"],
        )

    def take(self, idx: np.ndarray) -> Samples:
        """The rows ``idx``; columns are copied when first read (groups use a few)."""
        return _Taken(self, idx)  # type: ignore[return-value]


def fingerprint(*mirrored: Any) -> str:
    """A digest of the source of the classes and functions a twin imitates."""
    digest = hashlib.sha1(usedforsecurity=False)
    for obj in mirrored:
        try:
            digest.update(inspect.getsource(obj).encode())
        except (OSError, TypeError):  # no source to compare: treat it as changed
            return ""
    return digest.hexdigest()[:16]


def _all(mask: np.ndarray) -> np.ndarray | slice:
    """``mask`` as an index, or ``slice(None)`` when it selects everything (no copies)."""
    return slice(None) if mask.all() else mask


class _Taken:
    """``Samples.take`` without copying every column up front."""

    def __init__(self, base: Samples, idx: np.ndarray) -> None:
        self._base, self._idx = base, idx

    def __getattr__(self, name: str) -> np.ndarray:
        col = getattr(self._base, name)[self._idx]
        setattr(self, name, col)
        return col

    def take(self, idx: np.ndarray) -> _Taken:
        return _Taken(self._base, self._idx[idx])


class Table:
    """Named per-elder columns (numpy arrays with one row per slot) that grow together."""

    def __init__(self, **spec: tuple[tuple[int, ...], Any, Any]) -> None:
        self._spec = spec  # name -> (shape after the row axis, dtype, fill value)
        self.cap = 0
        for name, (tail, dtype, fill) in spec.items():
            setattr(self, name, np.full((0, *tail), fill, dtype))

    def grow(self, cap: int) -> None:
        for name, (tail, dtype, fill) in self._spec.items():
            new = np.full((cap, *tail), fill, dtype)
            new[: self.cap] = getattr(self, name)
            setattr(self, name, new)
        self.cap = cap

    def clear(self, row: int) -> None:
        for name, (_, _, fill) in self._spec.items():
            getattr(self, name)[row] = fill

    def __getattr__(self, name: str) -> np.ndarray:  # for type checkers: columns are arrays
        raise AttributeError(name)


class Group:
    """One rule family's vectorised twin.  Subclasses fill in the rule-specific parts."""

    name = "group"
    kinds: frozenset[int] = frozenset({VITALS})  # reading kinds the parked rules react to
    events: frozenset[str] = frozenset()  # and, if EVENT is one, which event types
    # ``absorb`` takes several readings of an elder in one call (contiguous, in order;
    # after one it cannot take, the elder's later ones are refused too): such a group
    # keeps a buffered upload parked instead of handing it to the rule objects.
    sequential = False
    # A twin of a rule kept in another module imitates its code: the classes and
    # functions it imitates, and ``fingerprint`` of their source when the twin was
    # last checked against them.  If that source changes, the twin stands down (its
    # rules stay on the plain path, correct and slower) until it is checked again.
    MIRRORS: tuple[Any, ...] = ()
    FINGERPRINT = ""

    def __init__(self) -> None:
        self.engaged = not self.MIRRORS or fingerprint(*self.MIRRORS) == self.FINGERPRINT
        self.cols = self.columns()
        self.asleep = np.zeros(0, bool)  # the group holds this elder's state
        self.bound = np.zeros(0, bool)  # this elder has the rules the group knows
        self.next_try = np.zeros(0, np.float64)  # event time of the next attempt to park
        self.rules: list[tuple[Any, ...] | None] = []  # the elder's rule objects, group order
        self.mask: list[int] = []  # bit i: the elder's rules[i] belongs to the group
        # [kind, event code + 1] -> relevant (event code -1: not an event)
        self._relevant = np.zeros((4, len(EVENTS) + 1), bool)
        for kind in self.kinds:
            self._relevant[kind] = kind != EVENT
        for e in self.events:
            self._relevant[EVENT, EVENTS[e] + 1] = EVENT in self.kinds

    # --- what a subclass provides ---------------------------------------------

    def columns(self) -> Table:
        raise NotImplementedError

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        """The elder's rules this group can run, and their bit mask; None if it cannot."""
        raise NotImplementedError

    def relevant(self, s: Samples) -> np.ndarray:
        """Which readings the parked rules react to at all (the others change nothing)."""
        return self._relevant[s.kind, s.event + 1]

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """Apply one relevant reading per row where provably quiet; return that mask."""
        quiet = np.ones(rows.size, bool)
        for kind, method in (
            (VITALS, self.on_vitals),
            (POSITION, self.on_positions),
            (EVENT, self.on_events),
            (STATUS, self.on_status),
        ):
            if kind in self.kinds:
                at = np.flatnonzero(s.kind == kind)
                if at.size:
                    quiet[at] = method(rows[at], s.take(at))
        return quiet

    def on_vitals(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        raise NotImplementedError

    def on_positions(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        raise NotImplementedError

    def on_events(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """Relevant events that change nothing while parked are quiet; by default none."""
        return np.zeros(rows.size, bool)

    def on_status(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        raise NotImplementedError

    def tick(self, t: float) -> np.ndarray:
        """Event time is ``t``: do the parked rules' timer work; return rows to wake."""
        return np.zeros(0, np.int64)

    def warm_up(self) -> None:
        """Compile (or load from the cache) what the group runs, before the first batch."""
        if self.sequential:
            self.absorb(np.zeros(0, np.int64), Samples.of([]))

    def load(self, slot: int, t: float) -> bool:
        """Copy the elder's rule state into the rows, if they are quiet and it fits."""
        raise NotImplementedError

    def confirm(self, slots: np.ndarray) -> np.ndarray:
        """After ``load``, vectorised: which of these may be parked (mask)."""
        return np.ones(slots.size, bool)

    def store(self, slot: int) -> None:
        """Write the rows back into the elder's rule objects (fresh objects, no sharing)."""
        raise NotImplementedError

    def snapshots(self, slot: int) -> list[dict[str, Any]] | None:
        """The parked rules' ``snapshot()``, if the group can say it without ``store``."""
        return None

    # --- shared bookkeeping -----------------------------------------------------

    def grow(self, cap: int) -> None:
        old = self.asleep.size
        self.cols.grow(cap)
        for name in ("asleep", "bound", "next_try"):
            a = getattr(self, name)
            new = np.zeros(cap, a.dtype)
            new[:old] = a
            setattr(self, name, new)
        self.rules.extend([None] * (cap - old))
        self.mask.extend([0] * (cap - old))

    def bind(self, slot: int, rules: list[Any]) -> None:
        picked = self.pick(rules) if self.engaged else None
        self.cols.clear(slot)
        self.asleep[slot] = False
        self.bound[slot] = picked is not None
        self.next_try[slot] = -np.inf
        self.rules[slot], self.mask[slot] = picked if picked is not None else (None, 0)


class StateTwin(Group):
    """A twin of one rule that keeps its state in the rule's own ``snapshot`` format."""

    def state(self, slot: int) -> dict[str, Any]:
        """What ``snapshot()`` of the rule would return were it fed what the rows were."""
        raise NotImplementedError

    def store(self, slot: int) -> None:
        picked = self.rules[slot]
        assert picked is not None
        picked[0].restore(self.state(slot))

    def snapshots(self, slot: int) -> list[dict[str, Any]] | None:
        return [self.state(slot)]


class FastPath:
    """Slots of elders and the groups that may hold their quiet rules."""

    def __init__(
        self,
        changed: Callable[[ElderDetector], None],
        groups: list[Group] | None = None,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.changed = changed  # the engine's: rules moved between the paths
        self.max_rounds = max_rounds
        if groups is None:
            from alerts.fast_baseline import BaselineGroup
            from alerts.fast_context import BatteryGroup, InactivityGroup, OfflineGroup, WearGroup
            from alerts.fast_events import FallGroup, SosGroup
            from alerts.fast_fever import FeverGroup
            from alerts.fast_geofence import GeofenceGroup
            from alerts.fast_minute import MinuteGroup

            groups = [
                SosGroup(),
                FallGroup(),
                MinuteGroup(),
                BaselineGroup(),
                FeverGroup(),
                InactivityGroup(),
                OfflineGroup(),
                WearGroup(),
                BatteryGroup(),
                GeofenceGroup(),
            ]
        self.groups = groups
        self._rounds = [g for g in groups if not g.sequential]
        self._sequential = [g for g in groups if g.sequential]
        for g in groups:
            # Compiled kernels: at start, not in the middle of the first batch (a few
            # seconds once per install while numba compiles, then ~0.2 s from its cache).
            g.warm_up()
        self.owners: list[ElderDetector | None] = []
        self.free: list[int] = []
        self.cap = 0

    # --- elders ------------------------------------------------------------------

    def attach(self, d: ElderDetector) -> None:
        if self.free:
            slot = self.free.pop()
        else:
            slot = len(self.owners)
            self.owners.append(None)
            if slot >= self.cap:
                self.cap = max(64, 2 * self.cap)
                for g in self.groups:
                    g.grow(self.cap)
        self.owners[slot] = d
        d.slot = slot
        for g in self.groups:
            g.bind(slot, d.rules)

    def detach(self, d: ElderDetector) -> None:
        self.wake_all(d)
        for g in self.groups:
            g.bound[d.slot] = False
            g.rules[d.slot] = None
        self.owners[d.slot] = None
        self.free.append(d.slot)
        d.slot = -1

    def parked_share(self) -> dict[str, float]:
        n = len(self.owners)
        return {
            g.name: round(float(g.asleep[:n].sum() / max(1, g.bound[:n].sum())), 3)
            for g in self.groups
        }

    def owner(self, slot: int) -> ElderDetector:
        d = self.owners[slot]
        assert d is not None
        return d

    def flush(self, d: ElderDetector) -> None:
        """Bring the rule objects up to date; they stay parked."""
        if d.asleep:
            for g in self.groups:
                if g.asleep[d.slot]:
                    g.store(d.slot)

    def snapshots(self, d: ElderDetector) -> dict[int, dict[str, Any]]:
        """Parked rules' snapshots by index in ``d.rules``; the other objects are flushed."""
        out: dict[int, dict[str, Any]] = {}
        if d.asleep:
            for g in self.groups:
                if g.asleep[d.slot]:
                    states = g.snapshots(d.slot)
                    if states is None:
                        g.store(d.slot)
                        continue
                    at = {id(r): i for i, r in enumerate(d.rules)}
                    mine = g.rules[d.slot] or ()
                    out.update((at[id(r)], st) for r, st in zip(mine, states, strict=True))
        return out

    def wake_all(self, d: ElderDetector) -> None:
        if d.asleep:
            for g in self.groups:
                if g.asleep[d.slot]:
                    self._wake(g, d.slot, -np.inf)

    # --- the batch -----------------------------------------------------------------

    def absorb(
        self,
        slots: np.ndarray,
        readings: list[Reading],
        kept: np.ndarray,
        t: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
    ) -> None:
        """Let the groups take the quiet readings of parked rules; wake the others.

        The batch's elders are in ``slots``; the i-th one's readings are
        ``readings[kept[starts[i]:ends[i]]]`` in event-time order, ``t`` the event
        times of ``readings``.  A group woken at an elder's j-th reading of the batch
        has taken the ones before it; the engine feeds its rules from there
        (``ElderDetector.skip``).
        """
        asleep = np.zeros(slots.size, bool)
        for g in self.groups:
            asleep |= g.asleep[slots]
        slot_of = np.where(asleep, slots, -1)
        count = ends - starts
        for i in np.flatnonzero((count > self.max_rounds) & asleep).tolist():
            # A buffered upload: the rule objects of the groups that take readings in
            # rounds take it, and are parked again at the next tick (see MAX_ROUNDS);
            # the sequential groups take it themselves.
            slot = int(slots[i])
            woken = [g for g in self._rounds if g.asleep[slot]]
            for g in woken:
                self._wake(g, slot, -np.inf, notify=False)
            if woken:
                self.changed(self.owner(slot))
            if not any(g.asleep[slot] for g in self._sequential):
                slot_of[i] = -1
        elder = np.repeat(np.arange(slots.size), count)
        mine = slot_of[elder] >= 0
        if not mine.any():
            return
        # In slot order (each elder's readings stay together and in order): the groups'
        # rows are then visited in memory order, which halves the cache misses.
        by_slot = np.flatnonzero(mine)
        by_slot = by_slot[np.argsort(slot_of[elder[by_slot]], kind="stable")]
        take = kept[by_slot]
        slot = slot_of[elder[by_slot]]
        index = (np.arange(kept.size) - np.repeat(starts, count))[by_slot]
        s = Samples.of([readings[i] for i in take.tolist()], t[take])
        for g in self.groups:
            sel = np.flatnonzero(g.asleep[slot] & g.relevant(s))
            if not sel.size:
                continue
            mine = slot[sel]
            if g.sequential:
                refused = np.flatnonzero(~g.absorb(mine, s.take(sel)))
                if refused.size:  # wake each elder at the first reading refused
                    first = np.ones(refused.size, bool)
                    first[1:] = mine[refused[1:]] != mine[refused[:-1]]
                    for i in sel[refused[first]].tolist():
                        self._wake(g, int(slot[i]), float(s.t[i]) + AFTER_WAKE_S, int(index[i]))
                continue
            # The k-th reading of its elder this group sees (the batch is in elder order).
            first = np.ones(sel.size, bool)
            first[1:] = mine[1:] != mine[:-1]
            start = np.maximum.accumulate(np.where(first, np.arange(sel.size), 0))
            rank = np.arange(sel.size) - start
            parked = np.ones(sel.size, bool)
            for k in range(int(rank.max()) + 1):
                now = np.flatnonzero((rank == k) & parked)
                if not now.size:
                    break
                idx = sel[now]
                quiet = g.absorb(slot[idx], s.take(idx))
                for i in idx[~quiet].tolist():
                    self._wake(g, int(slot[i]), float(s.t[i]) + AFTER_WAKE_S, int(index[i]))
                    parked &= mine != slot[i]

    # --- time ------------------------------------------------------------------------

    def tick(self, t: float) -> None:
        for g in self.groups:
            for slot in g.tick(t).tolist():
                self._wake(g, slot, t + AFTER_WAKE_S)

    def settle(self, t: float) -> None:
        """Park the awake rules that have become quiet (tried now and then, not always)."""
        n = len(self.owners)
        for g in self.groups:
            todo = np.flatnonzero(g.bound[:n] & ~g.asleep[:n] & (g.next_try[:n] <= t))
            if not todo.size:
                continue
            loaded = np.array([g.load(slot, t) for slot in todo.tolist()], bool)
            loaded[loaded] = g.confirm(todo[loaded])
            for slot in todo[loaded].tolist():
                self._sleep(g, slot)
            g.next_try[todo[~loaded]] = t + RETRY_S

    # --- parking ---------------------------------------------------------------------

    def _sleep(self, g: Group, slot: int) -> None:
        g.asleep[slot] = True
        d = self.owner(slot)
        d.asleep |= g.mask[slot]
        self.changed(d)

    def _wake(
        self, g: Group, slot: int, retry_at: float, at: int = 0, *, notify: bool = True
    ) -> None:
        """Hand ``g``'s rules of ``slot`` back to the objects; ``notify``: tell the engine
        now (else the caller does, once for several groups)."""
        g.store(slot)
        g.asleep[slot] = False
        g.next_try[slot] = retry_at
        d = self.owner(slot)
        d.asleep &= ~g.mask[slot]
        if at:  # the group took the elder's readings before this one
            if d.skip is None:
                d.skip = {}
            for i in range(len(d.rules)):
                if g.mask[slot] >> i & 1:
                    d.skip[i] = at
        if notify:
            self.changed(d)
