"""The detection core: every elder's rules, fed in event-time order, with one
lateness policy below all of them.  Pure: readings and a ``now`` in, findings out.

Ordering and lateness (decided here once, so no rule has to):

* Within a micro-batch each elder's readings are sorted by event time.
* A reading older than what the elder's rules have already seen (the elder's
  *watermark*) cannot be fed to them without breaking their time order: it is
  stored by the ingest but skipped here, and counted.
* A buffered upload arrives in order but late.  Its readings feed the rules (so
  baselines and windows stay right), but what they reveal is *stale* when its
  event time is more than ``stale_after`` behind ``now``: such findings are dropped
  — an elder who had a fast pulse an hour ago in a lift with no signal does not
  need an alarm now.  Two kinds are never dropped: ``sos`` (a delayed cry for help
  is still one) and ``fall`` within ``fall_stale_after``; they are raised with
  ``detail["delayed_s"]``.

How it stays fast (the findings are exactly those of feeding every reading to every
rule and ticking every rule, which is what ``fast=False`` does):

* A rule may declare ``accepts`` (the reading types it reacts to); it is then not
  called for the others (a vitals sample never reaches the SOS button's rule).
* A rule may declare ``next_due()`` (the earliest event time, epoch seconds, at which
  ``advance`` can do anything; None: not before its next reading); ``tick`` skips it
  until then.  Rules without it are advanced on every tick.
* Rule families with a vectorised twin (``alerts.fastpath``) are handed over to it
  while they are *quiet* -- no open episode, nothing that could raise -- and take
  an ordinary reading as a few numpy operations across all elders of the batch.
  Anything that could make such a rule speak hands it back first.
* The batch itself is handled as columns: its readings are ordered, judged late and
  counted, and the elders' watermarks moved, with array operations over all of it
  (``_Columns``); Python visits one by one only the elders with a rule on the plain
  path.  An elder with more than ``max_rounds`` readings in one batch (a buffered
  upload) is handed whole to the rule objects of the groups that take readings in
  vectorised rounds, which is cheaper than as many rounds for a handful of rows; the
  groups with a compiled kernel (``alerts.fast_kernels``: the minute-binned vitals
  and the pulse baseline, most of an elder's rules) take it themselves.

>>> from datetime import datetime, timezone
>>> from protocol.messages import Event
>>> engine = DetectionEngine()
>>> t = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
>>> [(e, f.kind) for e, f in engine.process([(7, Event("w7", 1, t, "sos"))], now=t)]
[(7, 'sos')]
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from alerts.core import Finding, Rule
from alerts.fastpath import MAX_ROUNDS, FastPath
from alerts.ruleset import ElderProfile, build_rules
from protocol.messages import Reading

STALE_AFTER = timedelta(minutes=15)
FALL_STALE_AFTER = timedelta(hours=2)
NEVER_STALE = frozenset({"sos"})
_ALWAYS = -math.inf  # a detector "due" at -inf is looked at on every tick


@dataclass
class EngineStats:
    readings: int = 0
    late_skipped: int = 0
    stale_dropped: int = 0
    findings: int = 0
    rule_errors: int = 0


@dataclass(slots=True)
class ElderDetector:
    """One elder's rules and event-time watermark."""

    profile: ElderProfile
    rules: list[Rule]
    watermark: datetime | None = None
    dirty: bool = False  # changed since the last snapshot
    # --- engine bookkeeping, rebuilt from ``rules``; never part of a snapshot ---
    elder_id: int = field(default=0, repr=False, compare=False)
    num: int = field(default=-1, repr=False, compare=False)  # row in the engine's columns
    order: int = field(default=0, repr=False, compare=False)  # place among the detectors
    inbox: Any = field(default=None, repr=False, compare=False)  # this batch: a reading or a list
    # rules[i] -> how many of this batch's readings the fast path already gave it
    skip: dict[int, int] | None = field(default=None, repr=False, compare=False)
    slot: int = field(default=-1, repr=False, compare=False)  # row in the fast path
    asleep: int = field(default=0, repr=False, compare=False)  # bit i: rules[i] is in the fast path
    plain: dict[type, tuple[Rule, ...]] = field(default_factory=dict, repr=False, compare=False)
    timed: tuple[Rule, ...] = field(default=(), repr=False, compare=False)
    due: float = field(default=_ALWAYS, repr=False, compare=False)

    def snapshot(self, parked: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The detector's state; ``parked``: snapshots of rules[i] the fast path holds."""
        parked = parked or {}
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "profile": self.profile.version,
            "rules": {
                r.kind + _suffix(r): parked[i] if i in parked else r.snapshot()
                for i, r in enumerate(self.rules)
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        wm = state.get("watermark")
        self.watermark = datetime.fromisoformat(wm) if wm else None
        saved = state.get("rules", {})
        for r in self.rules:
            key = r.kind + _suffix(r)
            if key in saved:
                r.restore(saved[key])

    def redispatch(self) -> None:
        """Recompute which rules the plain path calls, per reading type and on ticks."""
        live = [r for i, r in enumerate(self.rules) if not self.asleep >> i & 1]
        self.plain = {}
        self.timed = tuple(live)
        self.due = _ALWAYS

    def rules_for(self, kind: type) -> tuple[Rule, ...]:
        """The plain-path rules a reading of type ``kind`` goes to (cached per type)."""
        live = [r for i, r in enumerate(self.rules) if not self.asleep >> i & 1]
        found = tuple(r for r in live if _accepts(r, kind))
        self.plain[kind] = found
        return found


def _accepts(rule: Rule, kind: type) -> bool:
    accepts = getattr(rule, "accepts", None)
    return accepts is None or any(issubclass(kind, t) for t in accepts)


def _suffix(rule: Rule) -> str:
    # Several rule objects share a kind only if they say so (e.g. one per zone).
    return f"#{rule.instance}" if hasattr(rule, "instance") else ""


ProfileSource = Callable[[int], ElderProfile]

# Allocations between young-generation collections once ``settle_heap`` has run
# (CPython's default is 700: a micro-batch makes tens of thousands of short-lived arrays
# and readings, and each young collection walks the survivors again).
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Call once in the detection process after start-up (detectors made, snapshots
    restored), and again after a large reload if wanted.

    The detectors are hundreds of thousands of long-lived objects (rule states, their
    dicts and lists).  CPython's cyclic collector walks all of them at every full
    collection -- about half a second at 5,000 elders, every few seconds under load --
    though they hold no garbage cycles worth finding.  ``gc.freeze`` moves everything
    alive now out of the collector's sight; what is made later is still collected.
    """
    gc.collect()
    gc.freeze()
    _, mid, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, max(mid, 50), max(old, 1000))


class DetectionEngine:
    """Per-elder detectors, fed micro-batches.  ``fast=False``: the plain reference path.

    ``max_rounds``: how many readings of one elder in a batch the fast path takes in
    rounds; with more (a buffered upload) the rule objects of the round-based groups
    take them (the sequential groups still take them in one pass).
    """

    def __init__(
        self,
        profile_for: ProfileSource = lambda elder_id: ElderProfile(elder_id),
        stale_after: timedelta = STALE_AFTER,
        fall_stale_after: timedelta = FALL_STALE_AFTER,
        on_rule_error: Callable[[int, str, Exception], None] | None = None,
        *,
        fast: bool = True,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.profile_for = profile_for
        self.stale_after = stale_after
        self.fall_stale_after = fall_stale_after
        self.on_rule_error = on_rule_error
        self.stats = EngineStats()
        self._detectors: dict[int, ElderDetector] = {}
        self._live: dict[int, ElderDetector] = {}  # detectors with rules on the plain path
        self._created = 0
        self._cols = _Columns()
        self._fast: FastPath | None = (
            FastPath(self._redispatch, max_rounds=max_rounds) if fast else None
        )

    @property
    def detectors(self) -> dict[int, ElderDetector]:
        """Every elder's detector, with rule objects up to date.

        Looking hands every rule back to the plain path (they return to the fast path
        when quiet again), so that what a caller reads or changes is the truth.
        """
        self._cols.sync()
        if self._fast is not None:
            for d in self._detectors.values():
                self._fast.wake_all(d)
        return self._detectors

    def parked_share(self) -> dict[str, float]:
        """Per rule family with a vectorised twin: the share of elders it holds now."""
        return {} if self._fast is None else self._fast.parked_share()

    def detector(self, elder_id: int) -> ElderDetector:
        d = self._detectors.get(elder_id)
        if d is None:
            profile = self.profile_for(elder_id)
            d = ElderDetector(profile, build_rules(profile), elder_id=elder_id)
            self._created += 1
            d.order = self._created
            self._detectors[elder_id] = d
            self._cols.add(d)
            self._redispatch(d)
            if self._fast is not None:
                self._fast.attach(d)
                self._cols.slot[d.num] = d.slot
        return d

    def process(
        self, items: Iterable[tuple[int | None, Reading]], now: datetime
    ) -> list[tuple[int, Finding]]:
        """Feed one micro-batch of (elder_id, reading); return findings to act on."""
        if self._fast is None:
            return self._process_plain(items, now)
        # Columnar: the batch's readings are ordered (elder by first appearance, then
        # event time, then arrival) and judged late with a few array operations; Python
        # touches each elder of the batch a few times and each reading only where a
        # rule object has to see it.
        pairs = items if type(items) is list else list(items)
        ids = list(map(_first, pairs))
        if None in ids:  # an unpaired device's samples are kept, not judged
            pairs = [p for p in pairs if p[0] is not None]
            ids = list(map(_first, pairs))
        if not pairs:
            return []
        readings = list(map(_second, pairs))
        n = len(readings)
        t = np.fromiter(map(_timestamp, map(_ts, readings)), np.float64, n)
        uniq, first, inverse = np.unique(
            np.array(ids, np.int64), return_index=True, return_inverse=True
        )
        cols = self._cols
        nums = cols.find(uniq)
        if (nums < 0).any():  # new elders: detectors made in order of first appearance
            for e in uniq[nums < 0][np.argsort(first[nums < 0], kind="stable")].tolist():
                self.detector(e)
            nums = cols.find(uniq)
        by_first = np.argsort(first, kind="stable")
        rank = np.empty(by_first.size, np.int64)
        rank[by_first] = np.arange(by_first.size)
        rank = rank[inverse]  # each reading's elder, numbered by first appearance
        nums = nums[by_first]
        order = np.lexsort((t, rank))  # stable: arrival order breaks ties
        kept = order[~(t[order] < cols.wm_t[nums[rank[order]]])]
        self.stats.readings += n
        self.stats.late_skipped += n - kept.size
        if not kept.size:
            return []
        rk = rank[kept]
        starts = np.flatnonzero(np.concatenate(([True], rk[1:] != rk[:-1])))
        ends = np.append(starts[1:], kept.size)
        present = nums[rk[starts]]  # the batch's elders with readings kept, in order
        last = kept[ends - 1]
        cols.moved(present, t[last], np.fromiter(readings, object, n)[last])
        if self._fast is not None:
            self._absorb(cols.slot[present], readings, kept, t, starts, ends)

        out: list[tuple[int, Finding]] = []
        # Only elders with a rule on the plain path are looked at one by one.
        for i in np.flatnonzero(cols.live[present]).tolist():
            d = cols.dets[present[i]]
            assert d is not None
            d.due = _ALWAYS  # new readings may have started timers
            d.inbox = [readings[j] for j in kept[starts[i] : ends[i]].tolist()]
            if d.skip is not None:
                self._feed_rest(d, now, out)
            else:
                self._feed(d, now, out)
            d.inbox = None
        self.stats.findings += len(out)
        return out

    def _process_plain(
        self, items: Iterable[tuple[int | None, Reading]], now: datetime
    ) -> list[tuple[int, Finding]]:
        """``process`` without a fast path: every reading to every rule, elder by elder."""
        # Each elder's readings: one reading as is, several as a list (most elders
        # have one reading in a batch; no container is made for it).
        inbox: dict[int, Any] = {}
        get = inbox.get
        for elder_id, reading in items:
            if elder_id is not None:  # an unpaired device's samples are kept, not judged
                got = get(elder_id)
                if got is None:
                    inbox[elder_id] = reading
                elif type(got) is list:
                    got.append(reading)
                else:
                    inbox[elder_id] = [got, reading]
        detectors = self._detectors
        batch: list[ElderDetector] = []
        readings = late = 0
        for elder_id, got in inbox.items():
            d = detectors.get(elder_id) or self.detector(elder_id)
            wm = d.watermark
            if type(got) is list:
                readings += len(got)
                got.sort(key=_ts)
                if wm is not None and got[0].ts < wm:
                    kept = [r for r in got if r.ts >= wm]
                    late += len(got) - len(kept)
                    if not kept:
                        continue
                    got = kept
                d.watermark = got[-1].ts
            else:
                readings += 1
                if wm is not None and got.ts < wm:
                    late += 1
                    continue
                d.watermark = got.ts
            d.inbox = got
            d.dirty = True
            d.due = _ALWAYS  # new readings may have started timers
            batch.append(d)
        self.stats.readings += readings
        self.stats.late_skipped += late

        out: list[tuple[int, Finding]] = []
        for d in batch:
            self._feed(d, now, out)
            d.inbox = None
        self.stats.findings += len(out)
        return out

    def _feed(self, d: ElderDetector, now: datetime, out: list[tuple[int, Finding]]) -> None:
        """Feed an elder's batch to the rules on the plain path."""
        got = d.inbox
        plain = d.plain
        for r in got if type(got) is list else (got,):
            rules = plain.get(type(r))
            if rules is None:
                rules = d.rules_for(type(r))
            for rule in rules:
                try:
                    found = rule.update(r)
                except Exception as exc:  # one broken rule must not silence the others
                    self._rule_failed(d.elder_id, rule, exc)
                    continue
                for f in found:
                    kept_f = self._judge_staleness(f, now)
                    if kept_f is not None:
                        out.append((d.elder_id, kept_f))

    def tick(self, now: datetime) -> list[tuple[int, Finding]]:
        """Event time moves on with no reading: silence-based rules get their say."""
        t = now.timestamp()
        if self._fast is not None:
            self._fast.tick(t)
        out: list[tuple[int, Finding]] = []
        live = self._live
        if len(live) == len(self._detectors):
            todo: Iterable[tuple[int, ElderDetector]] = self._detectors.items()
        else:  # few: in the detectors' order, as a plain tick would visit them
            todo = sorted(live.items(), key=lambda kv: kv[1].order)
        for elder_id, d in todo:
            if d.due > t:
                continue
            due = math.inf
            for rule in d.timed:
                next_due = getattr(rule, "next_due", None)
                if next_due is not None:
                    at = next_due()
                    if at is None or at > t:
                        due = min(due, math.inf if at is None else at)
                        continue
                try:
                    found = rule.advance(now)
                except Exception as exc:
                    self._rule_failed(elder_id, rule, exc)
                    found = []
                for f in found:
                    d.dirty = True
                    out.append((elder_id, f))
                at = next_due() if next_due is not None else _ALWAYS
                due = min(due, math.inf if at is None else at)
            d.due = due
        if self._fast is not None:
            self._fast.settle(t)
        self.stats.findings += len(out)
        return out

    def resume(self, now: datetime) -> None:
        """After a restart or restore: rules that judge silence start a grace period."""
        for d in self._detectors.values():
            for i, rule in enumerate(d.rules):
                resume = getattr(rule, "resume", None)
                if resume is not None:
                    if d.asleep >> i & 1 and self._fast is not None:
                        self._fast.wake_all(d)
                    resume(now)
                    d.due = _ALWAYS

    # --- internals -----------------------------------------------------------

    def _feed_rest(self, d: ElderDetector, now: datetime, out: list[tuple[int, Finding]]) -> None:
        """Feed an elder's batch when some rules were woken part-way through it."""
        skip, d.skip = d.skip or {}, None
        got = d.inbox
        index = {id(r): i for i, r in enumerate(d.rules)}
        for j, r in enumerate(got if type(got) is list else (got,)):
            for rule in d.rules_for(type(r)):
                if skip.get(index[id(rule)], 0) > j:
                    continue  # the fast path took this one before waking the rule
                try:
                    found = rule.update(r)
                except Exception as exc:
                    self._rule_failed(d.elder_id, rule, exc)
                    continue
                for f in found:
                    kept = self._judge_staleness(f, now)
                    if kept is not None:
                        out.append((d.elder_id, kept))

    def _redispatch(self, d: ElderDetector) -> None:
        d.redispatch()
        self._cols.live[d.num] = bool(d.timed)
        if d.timed:
            self._live[d.elder_id] = d
        else:
            self._live.pop(d.elder_id, None)

    def _absorb(
        self,
        slots: np.ndarray,
        readings: list[Reading],
        kept: np.ndarray,
        t: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
    ) -> None:
        assert self._fast is not None
        try:
            self._fast.absorb(slots, readings, kept, t, starts, ends)
        except Exception as exc:  # a bug in the fast path must not cost a finding
            self.stats.rule_errors += 1
            if self.on_rule_error is not None:
                self.on_rule_error(-1, "fastpath", exc)
            fast, self._fast = self._fast, None
            self._cols.sync()  # the plain path reads the detectors' own watermarks
            for d in self._detectors.values():
                fast.wake_all(d)

    def _rule_failed(self, elder_id: int, rule: Rule, exc: Exception) -> None:
        # One broken rule must not silence the others (Traccar's BaseEventHandler).
        self.stats.rule_errors += 1
        if self.on_rule_error is not None:
            self.on_rule_error(elder_id, rule.kind, exc)

    def _judge_staleness(self, f: Finding, now: datetime) -> Finding | None:
        delay = now - f.ts
        if delay <= self.stale_after:
            return f
        if f.kind in NEVER_STALE or (f.kind == "fall" and delay <= self.fall_stale_after):
            return replace(f, detail={**f.detail, "delayed_s": round(delay.total_seconds())})
        self.stats.stale_dropped += 1
        return None

    # --- state that survives a restart ---------------------------------------

    def snapshot(self, *, only_dirty: bool = True) -> dict[int, dict[str, Any]]:
        out = {}
        moved = self._cols.sync()
        for elder_id, d in self._detectors.items():
            if d.dirty or moved[d.num] or not only_dirty:
                parked = self._fast.snapshots(d) if self._fast is not None else None
                out[elder_id] = d.snapshot(parked)
                d.dirty = False
        return out

    def restore(self, states: dict[int, dict[str, Any]]) -> None:
        for elder_id, state in states.items():
            d = self.detector(elder_id)
            if self._fast is not None:
                self._fast.wake_all(d)
            d.restore(state)
            self._cols.restored(d)
            d.due = _ALWAYS

    def reconfigure(self, elder_id: int) -> None:
        """Thresholds changed: rebuild the elder's rules, keeping what state still fits."""
        self._cols.sync()
        old = self._detectors.pop(elder_id, None)
        if old is not None:
            self._live.pop(elder_id, None)
            if self._fast is not None:
                self._fast.detach(old)
            self._cols.drop(old)
            new = self.detector(elder_id)
            if self._fast is not None:
                self._fast.wake_all(new)
            new.restore(old.snapshot())
            self._cols.restored(new)
            new.dirty = True  # the rebuilt state is what a snapshot must save


_ts: Callable[[Reading], datetime] = attrgetter("ts")
_timestamp = datetime.timestamp
_first, _second = itemgetter(0), itemgetter(1)


class _Columns:
    """The engine's per-detector numbers as arrays, indexed by ``ElderDetector.num``.

    The batch's per-elder bookkeeping (watermark, dirty, which elders have rules on
    the plain path) is done on these in a few array operations.  A detector's own
    ``watermark`` and ``dirty`` are brought up to date by ``sync`` before anyone reads
    them.
    """

    def __init__(self) -> None:
        self.dets: list[ElderDetector | None] = []  # None: replaced (``drop``)
        self.cap = 0
        self.wm_t = np.zeros(0)  # watermark, epoch seconds (-inf: none)
        self.wm_of = np.zeros(0, object)  # the reading that moved it, until ``sync``
        self.moved_ = np.zeros(0, bool)  # readings since the last ``sync``: dirty
        self.slot = np.zeros(0, np.int64)  # row in the fast path
        self.live = np.zeros(0, bool)  # some rule on the plain path (``timed``)
        self._ids = np.zeros(0, np.int64)  # elder ids, sorted, and their detectors
        self._nums = np.zeros(0, np.int64)
        self._index: dict[int, int] = {}  # elder id -> num: the truth for the arrays

    def add(self, d: ElderDetector) -> None:
        d.num = len(self.dets)
        self.dets.append(d)
        if d.num >= self.cap:
            self.cap = max(64, 2 * self.cap)
            for name, fill in (
                ("wm_t", -math.inf),
                ("wm_of", None),
                ("moved_", False),
                ("slot", -1),
                ("live", False),
            ):
                old = getattr(self, name)
                new = np.full(self.cap, fill, old.dtype)
                new[: old.size] = old
                setattr(self, name, new)
        self.restored(d)
        self._index[d.elder_id] = d.num
        self._ids = np.zeros(0, np.int64)  # rebuilt at the next ``find``

    def find(self, ids: np.ndarray) -> np.ndarray:
        """The ``num`` of each elder id's detector, -1 for none."""
        if self._ids.size != len(self._index):
            self._ids = np.fromiter(self._index, np.int64, len(self._index))
            self._nums = np.fromiter(self._index.values(), np.int64, len(self._index))
            by_id = np.argsort(self._ids)
            self._ids, self._nums = self._ids[by_id], self._nums[by_id]
        if not self._ids.size:
            return np.full(ids.size, -1, np.int64)
        at = np.minimum(np.searchsorted(self._ids, ids), self._ids.size - 1)
        return np.where(self._ids[at] == ids, self._nums[at], -1)

    def moved(self, nums: np.ndarray, t: np.ndarray, readings: np.ndarray) -> None:
        """Detectors ``nums`` took readings up to ``readings`` (event times ``t``)."""
        self.wm_t[nums] = t
        self.wm_of[nums] = readings
        self.moved_[nums] = True

    def drop(self, d: ElderDetector) -> None:
        """``d`` is replaced by a new detector of the same elder (synced before)."""
        self.dets[d.num] = None
        self.live[d.num] = self.moved_[d.num] = False
        self.wm_of[d.num] = None

    def restored(self, d: ElderDetector) -> None:
        """``d.watermark`` was set from outside: it is the truth."""
        self.wm_t[d.num] = d.watermark.timestamp() if d.watermark else -math.inf
        self.wm_of[d.num] = None
        if self.moved_[d.num]:
            d.dirty = True
            self.moved_[d.num] = False

    def sync(self) -> np.ndarray:
        """Write the watermarks into the detectors; which moved since the last call."""
        moved = self.moved_.copy()
        for num in np.flatnonzero(moved).tolist():
            d = self.dets[num]
            assert d is not None
            d.watermark = self.wm_of[num].ts
            d.dirty = True
            self.wm_of[num] = None
        self.moved_[:] = False
        return moved
