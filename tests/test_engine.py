"""The detection engine: ordering, lateness, staleness, broken rules, state, reconfiguration.

The policy is tested with small recording rules (``build_rules`` swapped for the
test), and the state round trips with the real rule set on a simulated community.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import alerts.engine as engine_module
from alerts.core import Finding, Severity
from alerts.engine import DetectionEngine
from alerts.ruleset import ElderProfile
from protocol.messages import Event, Position, Reading, Vitals

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 local


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Recorder:
    """Records what it is fed; speaks on events of its ``say`` type."""

    def __init__(self, kind: str = "rec", say: str = "sos", fail_on: str | None = None) -> None:
        self.kind, self.say, self.fail_on = kind, say, fail_on
        self.seen: list[tuple[str, datetime]] = []
        self.ticks: list[datetime] = []

    def update(self, r: Reading) -> list[Finding]:
        self.seen.append((type(r).__name__, r.ts))
        if isinstance(r, Event) and r.type == self.fail_on:
            raise RuntimeError("broken rule")
        if isinstance(r, Event) and r.type == self.say:
            return [Finding(self.say, Severity.CRITICAL, r.ts, "said", detail={"seq": r.seq})]
        return []

    def advance(self, now: datetime) -> list[Finding]:
        self.ticks.append(now)
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"seen": len(self.seen)}

    def restore(self, state: dict[str, Any]) -> None:
        self.seen = [("restored", T0)] * state["seen"]


class OnlyEvents(Recorder):
    accepts = frozenset({Event})


class Timed(Recorder):
    """Has nothing to do on ``advance`` before ``due`` (epoch seconds)."""

    def __init__(self, due: float | None) -> None:
        super().__init__("timed")
        self.due = due

    def next_due(self) -> float | None:
        return self.due


@pytest.fixture
def rules(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []

    def build(profile: ElderProfile) -> list[Any]:
        rs = [Recorder("a"), Recorder("b", say="fall")]
        made.extend(rs)
        return rs

    monkeypatch.setattr(engine_module, "build_rules", build)
    return made


def v(seq: int, seconds: float, device: str = "w1") -> Vitals:
    return Vitals(device, seq, at(seconds), hr=70.0)


def test_each_elders_readings_are_fed_in_event_time_order(rules: list[Any]) -> None:
    engine = DetectionEngine()
    batch = [(1, v(3, 30)), (2, v(1, 5, "w2")), (1, v(1, 10)), (1, v(2, 20)), (None, v(9, 1))]
    engine.process(batch, now=at(40))
    a1, _, a2, _ = rules
    assert [ts for _, ts in a1.seen] == [at(10), at(20), at(30)]
    assert [ts for _, ts in a2.seen] == [at(5)]
    assert engine.stats.readings == 4  # the unpaired device's sample is not judged


def test_late_readings_are_skipped_and_counted(rules: list[Any]) -> None:
    engine = DetectionEngine()
    engine.process([(1, v(1, 60))], now=at(60))
    engine.process([(1, v(2, 30)), (1, v(3, 60)), (1, v(4, 90))], now=at(90))
    assert [ts for _, ts in rules[0].seen] == [at(60), at(60), at(90)]
    assert engine.stats.late_skipped == 1
    assert engine.stats.readings == 4


def test_stale_findings_are_dropped_but_sos_never(rules: list[Any]) -> None:
    engine = DetectionEngine()
    now = at(3600)
    found = engine.process(
        [(1, Event("w1", 1, at(0), "sos")), (1, Event("w1", 2, at(10), "fall"))], now=now
    )
    # An hour-old SOS is raised with its delay; an hour-old fall is within fall_stale_after.
    assert [(f.kind, f.detail["delayed_s"]) for _, f in found] == [("sos", 3600), ("fall", 3590)]
    old = engine.process([(1, Event("w1", 3, at(3600), "fall"))], now=at(3600 + 3 * 3600))
    assert old == [] and engine.stats.stale_dropped == 1
    fresh = engine.process([(1, Event("w1", 4, at(20000), "sos"))], now=at(20005))
    assert [f.detail for _, f in fresh] == [{"seq": 4}]  # not delayed: no delayed_s


def test_a_broken_rule_does_not_silence_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        engine_module, "build_rules", lambda p: [Recorder("x", fail_on="sos"), Recorder("y")]
    )
    errors: list[tuple[int, str, str]] = []
    engine = DetectionEngine(on_rule_error=lambda e, k, exc: errors.append((e, k, str(exc))))
    found = engine.process([(5, Event("w5", 1, at(0), "sos"))], now=at(0))
    assert [(e, f.kind) for e, f in found] == [(5, "sos")]  # from "y"
    assert errors == [(5, "x", "broken rule")] and engine.stats.rule_errors == 1


def test_rules_see_only_the_types_they_accept_and_wait_for_their_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    def build(p: ElderProfile) -> list[Any]:
        made[:] = [OnlyEvents(), Timed(due=at(100).timestamp()), Timed(due=None), Recorder()]
        return list(made)

    monkeypatch.setattr(engine_module, "build_rules", build)
    engine = DetectionEngine()
    pos = Position("w1", 2, at(1), 34.8, 110.4, 10.0, "gps")
    engine.process([(1, v(1, 0)), (1, pos), (1, Event("w1", 3, at(2), "service"))], now=at(2))
    only, timed, never, every = made
    assert [k for k, _ in only.seen] == ["Event"]
    assert [k for k, _ in every.seen] == ["Vitals", "Position", "Event"]
    for t in (50, 99, 100, 130):
        engine.tick(at(t))
    assert timed.ticks == [at(100), at(130)]  # not before its deadline
    assert never.ticks == []  # never due without a reading
    assert every.ticks == [at(50), at(99), at(100), at(130)]


def test_reconfigure_rebuilds_the_rules_and_keeps_their_state(rules: list[Any]) -> None:
    engine = DetectionEngine()
    engine.process([(1, v(1, 0)), (1, v(2, 60))], now=at(60))
    engine.reconfigure(1)
    new_a = rules[2]
    assert new_a is engine.detectors[1].rules[0] and len(new_a.seen) == 2
    assert engine.detectors[1].watermark == at(60)
    engine.process([(1, v(3, 30))], now=at(90))  # still behind the kept watermark
    assert engine.stats.late_skipped == 1


# --- with the real rules ----------------------------------------------------------------


def community(elders: int = 8, hours: float = 1.5) -> tuple[dict[int, ElderProfile], list[Any]]:
    from bench.detect import profiles, stream

    batches, roster = stream(elders, hours, seed=5, batch=40)
    return profiles(roster), batches


def drive(engine: DetectionEngine, batches: list[Any], start: datetime) -> list[Any]:
    out, last = [], start
    for items, now in batches:
        out.append(engine.process(items, now))
        if now - last >= timedelta(seconds=10):
            out.append(engine.tick(now))
            last = now
    return out


@pytest.mark.parametrize("fast", [True, False])
def test_snapshot_restore_through_json_mid_stream_gives_identical_findings(fast: bool) -> None:
    from bench.detect import START

    by_id, batches = community()
    cut = len(batches) // 2
    a = DetectionEngine(profile_for=by_id.__getitem__, fast=fast)
    drive(a, batches[:cut], START)
    saved = json.loads(json.dumps(a.snapshot(only_dirty=False)))
    assert a.snapshot() == {}  # everything was just saved: nothing is dirty
    b = DetectionEngine(profile_for=by_id.__getitem__, fast=fast)
    b.restore({int(k): s for k, s in saved.items()})
    rest = batches[cut:]
    start = batches[cut - 1][1]
    assert drive(a, rest, start) == drive(b, rest, start)
    assert a.snapshot(only_dirty=False) == b.snapshot(only_dirty=False)


def test_fast_and_plain_engines_agree_on_a_simulated_community() -> None:
    from bench.detect import START

    by_id, batches = community(12, 2.0)
    fast = DetectionEngine(profile_for=by_id.__getitem__)
    plain = DetectionEngine(profile_for=by_id.__getitem__, fast=False)
    assert drive(fast, batches, START) == drive(plain, batches, START)
    assert fast.stats == plain.stats
    assert fast.snapshot(only_dirty=False) == plain.snapshot(only_dirty=False)
    assert max(fast.parked_share().values()) > 0.5


def test_detectors_hands_back_up_to_date_rule_objects() -> None:
    from bench.detect import START

    by_id, batches = community(4, 0.5)
    fast = DetectionEngine(profile_for=by_id.__getitem__)
    plain = DetectionEngine(profile_for=by_id.__getitem__, fast=False)
    drive(fast, batches, START)
    drive(plain, batches, START)
    for elder, d in plain.detectors.items():
        mine = fast.detectors[elder]
        assert [r.snapshot() for r in mine.rules] == [r.snapshot() for r in d.rules]
