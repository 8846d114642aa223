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

>>> from datetime import datetime, timezone
>>> from protocol.messages import Event
>>> engine = DetectionEngine()
>>> t = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
>>> [(e, f.kind) for e, f in engine.process([(7, Event("w7", 1, t, "sos"))], now=t)]
[(7, 'sos')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.core import Finding, Rule
from alerts.fastpath import FastPath
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


class DetectionEngine:
    """Per-elder detectors, fed micro-batches.  ``fast=False``: the plain reference path."""

    def __init__(
        self,
        profile_for: ProfileSource = lambda elder_id: ElderProfile(elder_id),
        stale_after: timedelta = STALE_AFTER,
        fall_stale_after: timedelta = FALL_STALE_AFTER,
        on_rule_error: Callable[[int, str, Exception], None] | None = None,
        *,
        fast: bool = True,
    ) -> None:
        self.profile_for = profile_for
        self.stale_after = stale_after
        self.fall_stale_after = fall_stale_after
        self.on_rule_error = on_rule_error
        self.stats = EngineStats()
        self._detectors: dict[int, ElderDetector] = {}
        self._live: dict[int, ElderDetector] = {}  # detectors with rules on the plain path
        self._created = 0
        self._fast: FastPath | None = FastPath(self._redispatch) if fast else None

    @property
    def detectors(self) -> dict[int, ElderDetector]:
        """Every elder's detector, with rule objects up to date.

        Looking hands every rule back to the plain path (they return to the fast path
        when quiet again), so that what a caller reads or changes is the truth.
        """
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
            self._redispatch(d)
            if self._fast is not None:
                self._fast.attach(d)
        return d

    def process(
        self, items: Iterable[tuple[int | None, Reading]], now: datetime
    ) -> list[tuple[int, Finding]]:
        """Feed one micro-batch of (elder_id, reading); return findings to act on."""
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
        if self._fast is not None:
            self._absorb(batch)

        out: list[tuple[int, Finding]] = []
        for d in batch:
            if not d.timed:
                continue  # every rule of this elder is parked in the fast path
            if d.skip is not None:
                self._feed_rest(d, now, out)
                continue
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
        self.stats.findings += len(out)
        return out

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
        if d.timed:
            self._live[d.elder_id] = d
        else:
            self._live.pop(d.elder_id, None)

    def _absorb(self, batch: list[ElderDetector]) -> None:
        assert self._fast is not None
        try:
            self._fast.absorb(batch)
        except Exception as exc:  # a bug in the fast path must not cost a finding
            self.stats.rule_errors += 1
            if self.on_rule_error is not None:
                self.on_rule_error(-1, "fastpath", exc)
            fast, self._fast = self._fast, None
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
        for elder_id, d in self._detectors.items():
            if d.dirty or not only_dirty:
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
            d.due = _ALWAYS

    def reconfigure(self, elder_id: int) -> None:
        """Thresholds changed: rebuild the elder's rules, keeping what state still fits."""
        old = self._detectors.pop(elder_id, None)
        if old is not None:
            self._live.pop(elder_id, None)
            if self._fast is not None:
                self._fast.detach(old)
            new = self.detector(elder_id)
            if self._fast is not None:
                self._fast.wake_all(new)
            new.restore(old.snapshot())


def _ts(r: Reading) -> datetime:
    return r.ts
