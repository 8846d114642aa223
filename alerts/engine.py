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

>>> from datetime import datetime, timezone
>>> from protocol.messages import Event
>>> engine = DetectionEngine()
>>> t = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
>>> [(e, f.kind) for e, f in engine.process([(7, Event("w7", 1, t, "sos"))], now=t)]
[(7, 'sos')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.core import Finding, Rule
from alerts.ruleset import ElderProfile, build_rules
from protocol.messages import Reading

STALE_AFTER = timedelta(minutes=15)
FALL_STALE_AFTER = timedelta(hours=2)
NEVER_STALE = frozenset({"sos"})


@dataclass
class EngineStats:
    readings: int = 0
    late_skipped: int = 0
    stale_dropped: int = 0
    findings: int = 0
    rule_errors: int = 0


@dataclass
class ElderDetector:
    """One elder's rules and event-time watermark."""

    profile: ElderProfile
    rules: list[Rule]
    watermark: datetime | None = None
    dirty: bool = False  # changed since the last snapshot

    def snapshot(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "profile": self.profile.version,
            "rules": {r.kind + _suffix(r): r.snapshot() for r in self.rules},
        }

    def restore(self, state: dict[str, Any]) -> None:
        wm = state.get("watermark")
        self.watermark = datetime.fromisoformat(wm) if wm else None
        saved = state.get("rules", {})
        for r in self.rules:
            key = r.kind + _suffix(r)
            if key in saved:
                r.restore(saved[key])


def _suffix(rule: Rule) -> str:
    # Several rule objects share a kind only if they say so (e.g. one per zone).
    return f"#{rule.instance}" if hasattr(rule, "instance") else ""


ProfileSource = Callable[[int], ElderProfile]


@dataclass
class DetectionEngine:
    profile_for: ProfileSource = field(default=lambda elder_id: ElderProfile(elder_id))
    stale_after: timedelta = STALE_AFTER
    fall_stale_after: timedelta = FALL_STALE_AFTER
    on_rule_error: Callable[[int, str, Exception], None] | None = None
    detectors: dict[int, ElderDetector] = field(default_factory=dict)
    stats: EngineStats = field(default_factory=EngineStats)

    def detector(self, elder_id: int) -> ElderDetector:
        d = self.detectors.get(elder_id)
        if d is None:
            profile = self.profile_for(elder_id)
            d = ElderDetector(profile, build_rules(profile))
            self.detectors[elder_id] = d
        return d

    def process(
        self, items: Iterable[tuple[int | None, Reading]], now: datetime
    ) -> list[tuple[int, Finding]]:
        """Feed one micro-batch of (elder_id, reading); return findings to act on."""
        by_elder: dict[int, list[Reading]] = {}
        for elder_id, reading in items:
            if elder_id is not None:  # an unpaired device's samples are kept, not judged
                by_elder.setdefault(elder_id, []).append(reading)
        out: list[tuple[int, Finding]] = []
        for elder_id, readings in by_elder.items():
            d = self.detector(elder_id)
            readings.sort(key=_ts)
            for r in readings:
                self.stats.readings += 1
                if d.watermark is not None and r.ts < d.watermark:
                    self.stats.late_skipped += 1
                    continue
                d.watermark = r.ts
                d.dirty = True
                for rule in d.rules:
                    found = self._call(elder_id, rule, rule.update, r)
                    for f in found:
                        kept = self._judge_staleness(f, now)
                        if kept is not None:
                            out.append((elder_id, kept))
        self.stats.findings += len(out)
        return out

    def tick(self, now: datetime) -> list[tuple[int, Finding]]:
        """Event time moves on with no reading: silence-based rules get their say."""
        out: list[tuple[int, Finding]] = []
        for elder_id, d in self.detectors.items():
            for rule in d.rules:
                for f in self._call(elder_id, rule, rule.advance, now):
                    d.dirty = True
                    out.append((elder_id, f))
        self.stats.findings += len(out)
        return out

    def resume(self, now: datetime) -> None:
        """After a restart or restore: rules that judge silence start a grace period."""
        for d in self.detectors.values():
            for rule in d.rules:
                resume = getattr(rule, "resume", None)
                if resume is not None:
                    resume(now)

    def _call(
        self, elder_id: int, rule: Rule, method: Callable[[Any], list[Finding]], arg: Any
    ) -> list[Finding]:
        # One broken rule must not silence the others (Traccar's BaseEventHandler).
        try:
            return method(arg)
        except Exception as exc:
            self.stats.rule_errors += 1
            if self.on_rule_error is not None:
                self.on_rule_error(elder_id, rule.kind, exc)
            return []

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
        for elder_id, d in self.detectors.items():
            if d.dirty or not only_dirty:
                out[elder_id] = d.snapshot()
                d.dirty = False
        return out

    def restore(self, states: dict[int, dict[str, Any]]) -> None:
        for elder_id, state in states.items():
            self.detector(elder_id).restore(state)

    def reconfigure(self, elder_id: int) -> None:
        """Thresholds changed: rebuild the elder's rules, keeping what state still fits."""
        old = self.detectors.pop(elder_id, None)
        if old is not None:
            new = self.detector(elder_id)
            new.restore(old.snapshot())


def _ts(r: Reading) -> datetime:
    return r.ts
