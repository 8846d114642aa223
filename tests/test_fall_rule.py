"""Spec tests for the SOS and fall rules, on synthetic timestamped readings."""

from __future__ import annotations

import copy
import doctest
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

import alerts.fall
import alerts.fall_features
import alerts.fall_model
import alerts.sos
import evaluation.device
import evaluation.fall_training
import evaluation.sisfall
from alerts.core import Action, Finding, Rule, Severity
from alerts.fall import FallRule, FallSettings
from alerts.fall_features import FEATURE_NAMES, burst_features
from alerts.fall_model import FallModel, default_model
from alerts.sos import SosRule
from protocol.messages import AccelBurst, Event, Reading, Vitals

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HZ = 50


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fall_burst(seed: int = 1) -> list[list[float]]:
    """2 s walking upright, 0.5 s falling, a 4 g impact, then lying still (8 s at 50 Hz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(100) / HZ
    walk = np.c_[
        0.1 * np.sin(2 * np.pi * t),
        -1 - 0.25 * np.sin(4 * np.pi * t),
        0.05 * np.cos(4 * np.pi * t),
    ]
    falling = np.linspace([0, -0.9, 0.1], [0.1, -0.3, 0.2], 25)
    impact = np.array([[0.8, -2.0, 2.5], [1.0, -1.5, 3.8], [0.5, -0.8, 2.0], [0.2, -0.3, 1.6]])
    settle = np.linspace([0.2, -0.3, 1.3], [0.05, 0.0, 1.0], 21)
    lying = np.tile([0.05, 0.0, 1.0], (250, 1))
    g = np.vstack([walk, falling, impact, settle, lying]) + rng.normal(0, 0.01, (400, 3))
    out: list[list[float]] = np.round(g, 3).tolist()
    return out


def sit_down_hard_burst(seed: int = 2) -> list[list[float]]:
    """Standing, dropping onto a chair with a 2.6 g jolt, then sitting still, 15 deg tilted."""
    rng = np.random.default_rng(seed)
    s, c = np.sin(np.radians(15)), np.cos(np.radians(15))
    stand = np.tile([0.0, -1.0, 0.0], (100, 1))
    drop = np.linspace([0.0, -0.9, 0.05], [0.1, -0.5, 0.1], 20)
    impact = np.array([[0.2, -1.8, 0.3], [0.3, -2.6, 0.4], [0.2, -1.6, 0.3]])
    settle = np.linspace([0.2, -1.2, 0.3], [0.0, -c, s], 27)
    sit = np.tile([0.0, -c, s], (250, 1))
    g = np.vstack([stand, drop, impact, settle, sit]) + rng.normal(0, 0.01, (400, 3))
    out: list[list[float]] = np.round(g, 3).tolist()
    return out


def fall(t: float, seq: int = 1, g: list[list[float]] | None = None) -> Event:
    accel = None if g is None else AccelBurst(hz=HZ, g=g)
    return Event("w1", seq, at(t), "fall", accel=accel)


def cancel(t: float, seq: int = 2) -> Event:
    return Event("w1", seq, at(t), "cancel")


def steps(t: float, n: int, seq: int = 10) -> Vitals:
    return Vitals("w1", seq, at(t), hr=80, steps=n)


def feed(rule: Rule, readings: list[Reading]) -> list[Finding]:
    out: list[Finding] = []
    for r in readings:
        out += rule.update(r)
    return out


# --- contract ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", [SosRule(), FallRule()])
def test_rules_follow_the_rule_protocol(rule: Any) -> None:
    assert isinstance(rule, Rule)
    json.dumps(rule.snapshot())


@pytest.mark.parametrize(
    "module",
    [
        alerts.fall,
        alerts.fall_features,
        alerts.fall_model,
        alerts.sos,
        evaluation.device,
        evaluation.fall_training,
        evaluation.sisfall,
    ],
)
def test_docstring_examples(module: Any) -> None:
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0


def test_shipped_model_loads_and_names_its_training_subjects() -> None:
    m = FallModel.load()
    assert m.features == FEATURE_NAMES
    assert m.trained_on, "the evaluation needs to know whom the model has seen"
    assert FallModel.from_json(json.loads(json.dumps(m.to_json()))) == m


# --- SOS --------------------------------------------------------------------------


def test_sos_raises_at_once_and_every_time() -> None:
    rule = SosRule()
    found = feed(rule, [Event("w1", 1, at(0), "sos"), Event("w1", 2, at(5), "sos")])
    assert [(f.kind, f.severity, f.action, f.ts) for f in found] == [
        ("sos", Severity.CRITICAL, Action.RAISE, at(0)),
        ("sos", Severity.CRITICAL, Action.RAISE, at(5)),
    ]


def test_sos_is_never_suppressed_not_even_by_cancel() -> None:
    rule = SosRule()
    found = feed(
        rule, [Event("w1", 1, at(0), "sos"), cancel(3), Event("w1", 3, at(4), "off_wrist")]
    )
    found += rule.advance(at(3600))
    assert [(f.kind, f.action) for f in found] == [("sos", Action.RAISE)]
    assert feed(rule, [fall(10), Vitals("w1", 4, at(11), hr=70)]) == []


# --- fall: judging the burst ------------------------------------------------------


def test_fall_with_a_real_looking_burst_raises_at_once() -> None:
    rule = FallRule()
    [f] = rule.update(fall(0, g=fall_burst()))
    assert (f.kind, f.severity, f.action, f.ts) == ("fall", Severity.CRITICAL, Action.RAISE, at(0))
    assert f.detail["verdict"] == "confirmed" and f.detail["episode"] == "open"
    assert f.value is not None and f.value >= default_model().threshold
    assert f.detail["features"]["orientation_deg"] == pytest.approx(90, abs=10)


def test_sitting_down_hard_is_dismissed_with_an_audit_note() -> None:
    rule = FallRule()
    [f] = rule.update(fall(0, g=sit_down_hard_burst()))
    assert (f.kind, f.severity, f.action) == ("fall_dismissed", Severity.LOW, Action.RAISE)
    assert f.detail["verdict"] == "dismissed" and f.detail["episode"] == "note"
    assert f.value is not None and f.value < f.detail["threshold"]
    assert set(FEATURE_NAMES) <= set(f.detail["features"]) and f.detail["model"]
    # No episode was opened: nothing to withdraw, nothing to escalate.
    assert rule.update(cancel(10)) == [] and rule.advance(at(3600)) == []


def test_fall_without_a_burst_is_trusted() -> None:
    [f] = FallRule().update(fall(0))
    assert (f.kind, f.severity, f.action) == ("fall", Severity.CRITICAL, Action.RAISE)
    assert (f.detail["verdict"], f.detail["reason"], f.value) == ("trusted", "no_burst", None)


def test_a_burst_too_short_to_judge_is_trusted() -> None:
    [f] = FallRule().update(fall(0, g=fall_burst()[90:160]))  # 1.4 s around the impact
    assert (f.kind, f.detail["verdict"], f.detail["reason"]) == ("fall", "trusted", "short_burst")


def test_per_elder_threshold() -> None:
    strict = FallRule(FallSettings(threshold=0.9999))
    assert strict.update(fall(0, g=fall_burst()))[0].kind == "fall_dismissed"
    lenient = FallRule(FallSettings(threshold=0.0))
    assert lenient.update(fall(0, g=sit_down_hard_burst()))[0].kind == "fall"
    trusting = FallRule(FallSettings(judge_burst=False))
    assert trusting.update(fall(0, g=sit_down_hard_burst()))[0].detail["verdict"] == "trusted"


# --- fall: what follows -----------------------------------------------------------


def test_cancel_within_the_window_withdraws() -> None:
    rule = FallRule()
    found = feed(rule, [fall(0, g=fall_burst()), cancel(45)])
    assert [(f.kind, f.action) for f in found] == [("fall", Action.RAISE), ("fall", Action.CLEAR)]
    assert found[1].detail["reason"] == "cancelled"
    assert rule.advance(at(3600)) == []  # withdrawn: no "no movement" later


def test_cancel_after_the_window_only_lowers_urgency() -> None:
    rule = FallRule(FallSettings(confirm_window_s=60))
    found = feed(rule, [fall(0, g=fall_burst()), cancel(90), cancel(95)])
    assert [(f.action, f.severity, f.detail["episode"]) for f in found] == [
        (Action.RAISE, Severity.CRITICAL, "open"),
        (Action.RAISE, Severity.HIGH, "deescalate"),
    ]
    assert found[1].detail["reason"] == "late_cancel"


def test_cancel_stamped_before_the_fall_is_not_about_it() -> None:
    rule = FallRule()
    rule.update(fall(100))
    assert rule.update(Event("w1", 9, at(99), "cancel")) == []


def test_no_movement_after_the_fall_escalates_once() -> None:
    rule = FallRule(FallSettings(still_after_s=300))
    rule.update(fall(0, g=fall_burst()))
    assert rule.advance(at(299)) == []
    [f] = rule.advance(at(301))
    assert (f.kind, f.severity, f.action, f.ts) == (
        "fall",
        Severity.CRITICAL,
        Action.RAISE,
        at(300),
    )
    assert f.detail["note"] == "no movement since fall" and f.detail["episode"] == "escalate"
    assert rule.advance(at(600)) == []


def test_walking_after_the_fall_lowers_urgency() -> None:
    rule = FallRule(FallSettings(moved_steps=15))
    found = feed(
        rule,
        [steps(-60, 1000), fall(0, g=fall_burst()), steps(30, 1002), steps(90, 1040)],
    )
    assert [(f.severity, f.detail["episode"]) for f in found] == [
        (Severity.CRITICAL, "open"),
        (Severity.HIGH, "deescalate"),
    ]
    assert found[1].detail["steps_since_fall"] == 38
    assert rule.advance(at(900)) == []  # up and walking: no "no movement" escalation


def test_steps_counted_across_the_fall_do_not_count_as_moving() -> None:
    # The walk that led to the fall shows up in the first reading after it.
    rule = FallRule()
    found = feed(rule, [steps(-50, 1000), fall(0), steps(10, 1100), steps(70, 1102)])
    assert [f.detail["episode"] for f in found] == ["open"]
    assert rule.advance(at(400))[0].detail["note"] == "no movement since fall"


def test_a_new_day_counter_reset_still_counts_steps() -> None:
    rule = FallRule(FallSettings(moved_steps=15))
    found = feed(rule, [fall(0), steps(10, 5000), steps(70, 20)])  # midnight in between
    assert found[-1].detail["reason"] == "moved"


def test_dismissed_burst_does_not_disturb_an_open_fall() -> None:
    rule = FallRule()
    found = feed(rule, [fall(0, g=fall_burst()), fall(20, seq=3, g=sit_down_hard_burst())])
    assert [f.kind for f in found] == ["fall", "fall_dismissed"]
    assert rule.update(cancel(50))[0].action is Action.CLEAR  # window counts from the fall


def test_the_episode_is_forgotten_after_a_while() -> None:
    rule = FallRule(FallSettings(episode_s=1800))
    rule.update(fall(0))
    rule.advance(at(1801))
    assert rule.snapshot()["episode"] is None
    assert rule.update(cancel(1810)) == []


# --- state and purity -------------------------------------------------------------


def script() -> list[Reading]:
    return [
        steps(-120, 300),
        fall(0, g=fall_burst()),
        steps(30, 300, seq=11),
        steps(90, 305, seq=12),
        fall(100, seq=4, g=sit_down_hard_burst()),
        steps(150, 306, seq=13),
        cancel(200),
        steps(400, 306, seq=14),
        fall(600, seq=5, g=fall_burst(seed=3)),
        cancel(620),
    ]


@pytest.mark.parametrize("cut", range(1, 10))
def test_snapshot_restore_mid_episode_gives_identical_findings(cut: int) -> None:
    readings = script()
    a = FallRule()
    feed(a, readings[:cut])
    b = FallRule()
    b.restore(json.loads(json.dumps(a.snapshot())))
    rest = readings[cut:]
    expect = feed(a, rest) + a.advance(at(4000))
    assert feed(b, rest) + b.advance(at(4000)) == expect
    assert expect, "the script keeps something to say after every cut"


def test_restore_does_not_alias_the_given_state() -> None:
    a = FallRule()
    a.update(fall(0))
    state = a.snapshot()
    kept = copy.deepcopy(state)
    b = FallRule()
    b.restore(state)
    b.advance(at(400))
    assert state == kept


def test_input_is_not_mutated() -> None:
    readings = script()
    kept = copy.deepcopy(readings)
    feed(FallRule(), readings)
    feed(SosRule(), readings)
    assert readings == kept
    g = fall_burst()
    kept_g = copy.deepcopy(g)
    burst_features(g, HZ)
    assert g == kept_g


def test_deterministic() -> None:
    assert feed(FallRule(), script()) == feed(FallRule(), script())
