"""Spec tests of the vital-sign rules: NEWS2 bands, sustained rules, HR with activity,
baseline drift, and the rule contract (snapshot/restore, no mutation, determinism).

Every stream is synthetic with explicit timestamps; no wall clock, no I/O.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from alerts.baseline import BaselineDriftRule, BaselineSettings
from alerts.core import Action, Finding, Rule, Severity
from alerts.heart_rate import HeartRateSettings, HrActivityRule, heart_rate_rules
from alerts.news2 import (
    PULSE_BANDS,
    aggregate_severity,
    band_score,
    parameter_severity,
    partial_news2,
    score_parameter,
)
from alerts.vitals_rule import News2ParamRule, PartialNews2Rule, VitalsSettings
from protocol.messages import Event, Reading, Vitals

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


# --- stream helpers --------------------------------------------------------------


def series(
    minutes: float,
    *,
    start: datetime = T0,
    every_s: int = 5,
    steps_per_min: float = 0.0,
    steps0: int = 0,
    worn: bool | None = None,
    **values: float,
) -> list[Vitals]:
    """Readings every ``every_s`` seconds for ``minutes`` with constant values."""
    out = []
    n = int(minutes * 60 / every_s)
    for i in range(n):
        t = i * every_s
        steps = steps0 + int(steps_per_min * t / 60)
        out.append(Vitals("w1", i, start + timedelta(seconds=t), steps=steps, worn=worn, **values))
    return out


def feed(rule: Rule, readings: Iterable[Reading]) -> list[Finding]:
    out: list[Finding] = []
    for r in readings:
        out += rule.update(r)
    return out


def raises(found: list[Finding], kind: str | None = None) -> list[Finding]:
    return [f for f in found if f.action is Action.RAISE and (kind is None or f.kind == kind)]


def opened(found: list[Finding]) -> list[Finding]:
    return [f for f in raises(found) if f.detail.get("episode") == "open"]


def clears(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.action is Action.CLEAR]


# --- NEWS2 bands (RCP 2017 chart) ------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "score"),
    [
        ("rr", 8, 3), ("rr", 9, 1), ("rr", 11, 1), ("rr", 12, 0), ("rr", 20, 0),
        ("rr", 21, 2), ("rr", 24, 2), ("rr", 25, 3),
        ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
        ("spo2", 96, 0),
        ("sbp", 90, 3), ("sbp", 91, 2), ("sbp", 100, 2), ("sbp", 101, 1), ("sbp", 110, 1),
        ("sbp", 111, 0), ("sbp", 219, 0), ("sbp", 220, 3),
        ("hr", 40, 3), ("hr", 41, 1), ("hr", 50, 1), ("hr", 51, 0), ("hr", 90, 0),
        ("hr", 91, 1), ("hr", 110, 1), ("hr", 111, 2), ("hr", 130, 2), ("hr", 131, 3),
        ("temp", 35.0, 3), ("temp", 35.1, 1), ("temp", 36.0, 1), ("temp", 36.1, 0),
        ("temp", 38.0, 0), ("temp", 38.1, 1), ("temp", 39.0, 1), ("temp", 39.1, 2),
    ],
)  # fmt: skip
def test_news2_band_boundaries(param: str, value: float, score: int) -> None:
    assert score_parameter(param, value) == score  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "on_oxygen", "score"),
    [
        (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1),
        (88, False, 0), (92, False, 0), (97, False, 0),  # on air >= 93 scores 0
        (88, True, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2),
        (96, True, 2), (97, True, 3),
    ],
)  # fmt: skip
def test_spo2_scale2(value: float, on_oxygen: bool, score: int) -> None:
    assert score_parameter("spo2", value, hypercapnic=True, on_oxygen=on_oxygen) == score


def test_noninteger_values_fall_in_exactly_one_band() -> None:
    assert band_score(130.4, PULSE_BANDS) == 3  # the chart's gap 130|131 closes upwards
    assert score_parameter("temp", 38.05) == 1
    assert score_parameter("spo2", 95.5) == 0


# Known cases computed by hand from the RCP NEWS2 chart (consciousness not assessed).
AGGREGATE_CASES = [
    # rr, spo2, sbp, hr, temp, hypercapnic, on_oxygen -> total, risk
    ((16, 97, 120, 70, 37.0), False, False, 0, "low"),
    ((12, 96, 111, 51, 36.1), False, False, 0, "low"),
    ((8, 97, 120, 70, 37.0), False, False, 3, "low-medium"),
    ((11, 95, 110, 50, 36.0), False, False, 5, "medium"),
    ((9, 92, 101, 41, 35.1), False, False, 6, "medium"),
    ((21, 94, 100, 91, 38.1), False, False, 7, "high"),
    ((22, 95, 105, 112, 38.4), False, False, 7, "high"),
    ((25, 91, 90, 131, 39.1), False, False, 14, "high"),
    ((18, 89, 130, 80, 37.2), False, False, 3, "low-medium"),
    ((18, 89, 130, 80, 37.2), True, False, 0, "low"),
    ((18, 89, 130, 80, 37.2), True, True, 2, "low"),  # +2 for oxygen
    ((18, 97, 130, 80, 37.2), True, True, 5, "medium"),  # over-oxygenated on scale 2
    ((26, 86, 95, 125, 39.5), True, True, 3 + 1 + 2 + 2 + 2 + 2, "high"),
]


@pytest.mark.parametrize(("vals", "hyper", "oxygen", "total", "risk"), AGGREGATE_CASES)
def test_partial_news2_known_cases(
    vals: tuple[float, ...], hyper: bool, oxygen: bool, total: int, risk: str
) -> None:
    p = partial_news2(
        dict(zip(("rr", "spo2", "sbp", "hr", "temp"), vals, strict=True)),
        hypercapnic=hyper,
        on_oxygen=oxygen,
    )
    assert (p.total, p.risk) == (total, risk)
    assert p.label == "partial NEWS2"
    assert p.missing == ("consciousness",)


def test_partial_news2_with_missing_parameters() -> None:
    p = partial_news2({"hr": 135, "spo2": None})
    assert p.total == 3 and p.red and p.scores == {"hr": 3}
    assert "spo2" in p.missing and "consciousness" in p.missing


def test_severity_mapping() -> None:
    assert parameter_severity(3) is Severity.HIGH
    assert parameter_severity(2) is Severity.MEDIUM
    assert parameter_severity(0) is None
    assert aggregate_severity(7) is Severity.CRITICAL
    assert aggregate_severity(5) is aggregate_severity(6) is Severity.MEDIUM
    assert aggregate_severity(4) is None


# --- sustained NEWS2 pulse, judged with activity -----------------------------------


def test_sustained_resting_tachycardia_raises_once_not_per_sample() -> None:
    rule = News2ParamRule("hr")
    found = feed(rule, series(25, hr=138))  # 300 samples
    assert len(found) == 1
    f = found[0]
    assert (f.kind, f.action, f.severity, f.value) == ("news2_hr", Action.RAISE, Severity.HIGH, 138)
    assert f.message == "心率持续偏高 138 次/分（静息）"
    assert f.detail["score"] == 3 and f.detail["episode"] == "open"
    assert T0 + timedelta(minutes=9) <= f.ts <= T0 + timedelta(minutes=15)


def test_resting_hr_130_for_15_minutes_fires() -> None:
    """130 is NEWS2 score 2: the resting-pulse rule (hr_activity) catches it."""
    found = [f for r in heart_rate_rules() for f in feed(r, series(15.5, hr=130))]
    assert [(f.kind, f.severity) for f in found] == [("hr_activity", Severity.MEDIUM)]
    assert found[0].ts <= T0 + timedelta(minutes=15)
    assert found[0].message == "静息时心率持续偏快 130 次/分"


def test_resting_hr_in_red_band_is_one_alert_not_two() -> None:
    found = [f for r in heart_rate_rules() for f in feed(r, series(15.5, hr=134))]
    assert [(f.kind, f.severity) for f in found] == [("news2_hr", Severity.HIGH)]


def test_same_hr_while_walking_does_not_raise() -> None:
    walking = series(40, hr=138, steps_per_min=105, steps0=2000)
    for rule in heart_rate_rules():
        assert feed(rule, walking) == []


def test_hr_right_after_walking_is_still_exercise() -> None:
    """Heart rate stays up for minutes after the steps stop: not a resting alarm."""
    walk = series(20, hr=140, steps_per_min=110)
    after = series(8, start=T0 + timedelta(minutes=20), hr=135, steps0=walk[-1].steps or 0)
    rest = series(10, start=T0 + timedelta(minutes=28), hr=80, steps0=walk[-1].steps or 0)
    for rule in heart_rate_rules():
        assert raises(feed(rule, walk + after + rest)) == []


def test_single_outlier_sample_does_not_raise() -> None:
    readings = series(30, hr=72)
    readings[100] = Vitals("w1", 100, readings[100].ts, hr=190, steps=0)
    for rule in heart_rate_rules():
        assert feed(rule, readings) == []


def test_a_few_scattered_abnormal_minutes_do_not_raise() -> None:
    readings = []
    for m in range(30):
        hr = 150 if m in (3, 9, 16, 24) else 75
        readings += series(1, start=T0 + timedelta(minutes=m), hr=hr)
    assert feed(News2ParamRule("hr"), readings) == []


def test_bradycardia_sustained_raises_even_while_walking() -> None:
    found = feed(News2ParamRule("hr"), series(20, hr=38, steps_per_min=80))
    assert [(f.kind, f.severity, f.value) for f in found] == [("news2_hr", Severity.HIGH, 38)]
    assert found[0].message == "心率持续过低 38 次/分"
    assert found[0].detail["direction"] == "low"


def test_bradycardia_of_exactly_40_raises_and_41_does_not() -> None:
    assert len(feed(News2ParamRule("hr"), series(20, hr=40))) == 1
    assert feed(News2ParamRule("hr"), series(20, hr=41)) == []


def test_sparse_reporting_watch_still_raises() -> None:
    """A watch reporting every 5 min: three abnormal minutes over 10 min are enough."""
    found = feed(News2ParamRule("hr"), series(30, hr=140, every_s=300))
    assert len(opened(found)) == 1


def test_reminders_at_most_every_30_minutes_then_clear() -> None:
    high = series(120, hr=140)
    normal = series(90, start=T0 + timedelta(minutes=120), hr=75)
    found = feed(News2ParamRule("hr"), high + normal)
    raised = raises(found)
    assert [f.detail["episode"] for f in raised] == ["open", "reraise", "reraise", "reraise"]
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(raised)]
    assert all(g >= timedelta(minutes=30) for g in gaps)
    (clear,) = clears(found)
    assert clear.ts >= T0 + timedelta(minutes=120 + 60)
    assert clear.message == "心率已恢复正常 75 次/分"


def test_gap_in_data_neither_raises_nor_clears() -> None:
    rule = News2ParamRule("hr")
    assert len(feed(rule, series(20, hr=140))) == 1
    assert rule.advance(T0 + timedelta(hours=5)) == []
    later = series(12, start=T0 + timedelta(hours=5), hr=140)
    assert [f.detail["episode"] for f in feed(rule, later)] == ["reraise"]


def test_advance_closes_the_last_minute() -> None:
    rule = News2ParamRule("hr")
    assert feed(rule, series(11, hr=140)) == []  # the 11th minute is still open
    found = rule.advance(T0 + timedelta(minutes=12))
    assert len(found) == 1 and found[0].detail["episode"] == "open"


def test_unknown_activity_is_judged_as_rest_by_default() -> None:
    no_steps = [Vitals("w1", i, T0 + timedelta(seconds=10 * i), hr=140) for i in range(120)]
    assert len(feed(News2ParamRule("hr"), no_steps)) == 1


def test_late_sample_of_a_closed_minute_is_ignored() -> None:
    rule = News2ParamRule("hr")
    feed(rule, series(3, hr=70))
    assert rule.update(Vitals("w1", 99, T0 + timedelta(seconds=30), hr=200)) == []
    assert rule.late == 1


# --- other parameters ------------------------------------------------------------


def test_spo2_89_scale1_raises_scale2_does_not() -> None:
    readings = series(20, spo2=89)
    plain = feed(News2ParamRule("spo2"), readings)
    hyper = feed(News2ParamRule("spo2", VitalsSettings(hypercapnic=True)), readings)
    assert [(f.kind, f.severity, f.message) for f in plain] == [
        ("news2_spo2", Severity.HIGH, "血氧持续偏低 89%")
    ]
    assert plain[0].detail["spo2_scale"] == 1
    assert hyper == []


def test_spo2_scale2_on_oxygen_flags_over_oxygenation() -> None:
    settings = VitalsSettings(hypercapnic=True, on_oxygen=True)
    found = feed(News2ParamRule("spo2", settings), series(20, spo2=98))
    assert [(f.severity, f.detail["direction"]) for f in found] == [(Severity.HIGH, "high")]
    assert found[0].detail["spo2_scale"] == 2


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("sbp", 88, "收缩压持续偏低 88 mmHg"),
        ("sbp", 225, "收缩压持续偏高 225 mmHg"),
        ("rr", 26, "呼吸频率持续偏高 26 次/分（静息）"),
        ("rr", 7, "呼吸频率持续过低 7 次/分"),
        ("temp", 34.8, "体温持续偏低 34.8 ℃"),
    ],
)
def test_other_parameters_raise_on_red_score(param: str, value: float, message: str) -> None:
    found = feed(News2ParamRule(param), series(20, **{param: value}))  # type: ignore[arg-type]
    assert [(f.kind, f.severity, f.message) for f in found] == [
        (f"news2_{param}", Severity.HIGH, message)
    ]


def test_temperature_39_5_needs_a_lowered_min_score() -> None:
    """Temperature never scores 3 on the high side; an elder's settings may lower the bar."""
    assert feed(News2ParamRule("temp"), series(20, temp=39.5)) == []
    found = feed(News2ParamRule("temp", VitalsSettings(min_score=2)), series(20, temp=39.5))
    assert [(f.severity, f.message) for f in found] == [(Severity.MEDIUM, "体温持续偏高 39.5 ℃")]


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="NEWS2"):
        News2ParamRule("steps")  # type: ignore[arg-type]


# --- the partial NEWS2 aggregate -------------------------------------------------


def test_partial_news2_rule_critical_at_7() -> None:
    readings = series(20, hr=112, rr=22, spo2=95, sbp=105, temp=38.4)
    found = feed(PartialNews2Rule(), readings)
    assert [(f.kind, f.severity, f.value) for f in found] == [
        ("news2_partial", Severity.CRITICAL, 7)
    ]
    f = found[0]
    assert f.detail["label"] == "partial NEWS2"
    assert f.detail["missing"] == ["consciousness"]
    assert f.message == "部分 NEWS2 评分持续 7 分（未含意识评估）"


def test_partial_news2_rule_medium_at_5_and_quiet_below() -> None:
    medium = feed(PartialNews2Rule(), series(20, hr=112, rr=22, spo2=95))  # 2+2+1
    assert [(f.severity, f.value) for f in medium] == [(Severity.MEDIUM, 5)]
    assert feed(PartialNews2Rule(), series(20, hr=112, rr=22)) == []  # 4


def test_partial_news2_uses_a_recent_blood_pressure_not_a_stale_one() -> None:
    bp = [Vitals("w1", 0, T0, sbp=95)]  # scores 2
    recent = series(20, start=T0 + timedelta(minutes=1), hr=112, spo2=95)  # 2+1
    assert len(feed(PartialNews2Rule(), bp + recent)) == 1
    stale = series(20, start=T0 + timedelta(hours=5), hr=112, spo2=95)
    assert feed(PartialNews2Rule(), bp + stale) == []


def test_partial_news2_leaves_out_an_exercising_pulse() -> None:
    walking = series(20, hr=135, rr=22, spo2=95, steps_per_min=100)  # rr and hr exertional
    assert feed(PartialNews2Rule(), walking) == []


# --- not worn --------------------------------------------------------------------


def test_not_worn_suppresses_vital_sign_findings() -> None:
    for rule in heart_rate_rules():
        assert feed(rule, series(40, hr=140, worn=False)) == []


def test_off_wrist_event_suppresses_until_on_wrist_and_window_restarts() -> None:
    rule = News2ParamRule("hr")
    stream: list[Reading] = [*series(5, hr=140)]
    stream.append(Event("w1", 1000, T0 + timedelta(minutes=5), "off_wrist"))
    stream += series(30, start=T0 + timedelta(minutes=5, seconds=1), hr=140)
    assert feed(rule, stream) == []
    back: list[Reading] = [Event("w1", 2000, T0 + timedelta(minutes=36), "on_wrist")]
    # After re-wear it takes a fresh sustained stretch: 5 minutes are not enough ...
    back += series(5, start=T0 + timedelta(minutes=36), hr=140)
    assert feed(rule, back) == []
    # ... 8 more are.
    assert len(feed(rule, series(8, start=T0 + timedelta(minutes=41), hr=140))) == 1


def test_not_worn_does_not_clear_an_open_episode() -> None:
    rule = News2ParamRule("hr")
    assert len(feed(rule, series(20, hr=140))) == 1
    off = series(120, start=T0 + timedelta(minutes=20), hr=70, worn=False)
    assert feed(rule, off) == []
    assert rule.sustain.active


# --- heart rate settings per elder -----------------------------------------------


def test_rest_high_is_configurable_per_elder() -> None:
    readings = series(20, hr=112)
    assert feed(HrActivityRule(), readings) == []
    found = feed(HrActivityRule(HeartRateSettings(rest_high=110)), readings)
    assert len(found) == 1 and found[0].detail["rest_high"] == 110


# --- baseline drift --------------------------------------------------------------


def day_stream(
    days: int,
    *,
    start: datetime = T0,
    shift: Callable[[int, int], float] = lambda day, hour: 0.0,
    seed: int = 7,
) -> list[Vitals]:
    """An elder on UTC+8: resting HR 58 at night, 68 by day, noise, a walk at 08:00.

    ``shift(day, local_hour)`` adds bpm; one reading every 2 minutes.
    """
    rng = random.Random(seed)
    out: list[Vitals] = []
    seq = 0
    for day in range(days):
        day_offset = rng.gauss(0, 2.0)
        for hour in range(24):
            hour_offset = rng.gauss(0, 1.5)
            base = 58.0 if hour < 6 or hour >= 22 else 68.0
            for minute in range(0, 60, 2):
                local = day * 1440 + hour * 60 + minute
                walking = hour == 8 and minute < 40
                steps = 0 if hour < 8 else 4000 if hour > 8 else min(minute, 40) * 100
                hr = base + day_offset + hour_offset + rng.gauss(0, 3.0)
                hr += 40.0 if walking else shift(day, hour)
                ts = start + timedelta(minutes=local) - timedelta(hours=8)
                out.append(Vitals("w1", seq, ts, hr=round(hr), steps=steps))
                seq += 1
    return out


def test_baseline_drift_fires_after_sustained_shift_not_before() -> None:
    shift_day = 14
    stream = day_stream(18, shift=lambda day, hour: 15.0 if day >= shift_day else 0.0)
    found = feed(BaselineDriftRule(), stream)
    first = opened(found)
    assert len(first) == 1
    f = first[0]
    shift_start = T0 + timedelta(days=shift_day) - timedelta(hours=8)
    assert shift_start < f.ts <= shift_start + timedelta(days=2)
    assert f.kind == "baseline_drift" and f.severity in (Severity.LOW, Severity.MEDIUM)
    assert 10 <= (f.value or 0) <= 20
    assert f.message.startswith("静息心率较个人基线升高")
    # Reminders at most daily; severity goes up as the drift lasts.
    reminders = [g for g in raises(found) if g.detail["episode"] == "reraise"]
    assert all(b.ts - a.ts >= timedelta(hours=24) for a, b in itertools.pairwise([f, *reminders]))
    assert any(g.severity is Severity.MEDIUM for g in raises(found))


def test_baseline_drift_quiet_on_noise_and_on_one_bad_night() -> None:
    assert feed(BaselineDriftRule(), day_stream(40)) == []
    one_night = day_stream(20, shift=lambda d, h: 15.0 if d == 15 and h < 6 else 0.0)
    assert feed(BaselineDriftRule(), one_night) == []


def test_baseline_drift_clears_when_back_to_baseline() -> None:
    stream = day_stream(24, shift=lambda day, hour: 15.0 if 12 <= day < 15 else 0.0)
    found = feed(BaselineDriftRule(), stream)
    assert len(opened(found)) == 1
    (clear,) = clears(found)
    assert clear.ts > T0 + timedelta(days=15) - timedelta(hours=8)
    assert clear.message.startswith("静息心率已回到个人基线")


def test_baseline_ignores_walking_and_unworn_samples() -> None:
    rule = BaselineDriftRule()
    feed(rule, day_stream(10))
    rule.advance(T0 + timedelta(days=10))  # close the last hour
    learned = [v for hour in rule.history for _, v in hour]
    assert len(learned) > 150
    assert all(50 <= v <= 80 for v in learned)  # the 08:00 walk (+40 bpm) is not rest
    before = json.dumps(rule.snapshot())
    feed(rule, series(120, start=T0 + timedelta(days=10), hr=150, worn=False))
    rule.advance(T0 + timedelta(days=10, hours=3))
    assert json.loads(before)["history"] == rule.snapshot()["history"]


# --- the rule contract, over every rule -------------------------------------------


def all_rules() -> list[Rule]:
    return [
        News2ParamRule("hr"),
        News2ParamRule("spo2", VitalsSettings(hypercapnic=True)),
        News2ParamRule("temp"),
        PartialNews2Rule(),
        HrActivityRule(),
        BaselineDriftRule(BaselineSettings(min_days=3)),
    ]


def contract_stream() -> list[Reading]:
    """Something for every rule to say: episodes, reminders, clears, wear changes."""
    stream: list[Reading] = [*day_stream(6, shift=lambda d, h: 20.0 if d >= 4 else 0.0)]
    t = T0 + timedelta(days=6)
    stream += series(40, start=t, hr=125, spo2=82, temp=34.5, rr=26, sbp=95)
    stream += series(40, start=t + timedelta(minutes=40), hr=138, spo2=95, temp=36.8)
    stream.append(Event("w1", 9000, t + timedelta(minutes=80), "off_wrist"))
    stream += series(10, start=t + timedelta(minutes=81), hr=150, worn=False)
    stream += series(80, start=t + timedelta(minutes=91), hr=72, spo2=97, worn=True, temp=36.9)
    return stream


@pytest.mark.parametrize("make", range(len(all_rules())))
def test_rule_contract(make: int) -> None:
    rule = all_rules()[make]
    assert isinstance(rule, Rule)
    assert isinstance(rule.kind, str) and rule.kind
    found = feed(rule, contract_stream())
    assert found, f"{rule.kind}: the contract stream should make every rule speak"
    for f in found:
        assert f.kind == rule.kind
        assert f.ts.tzinfo is not None
        assert f.message and any("\u4e00" <= ch <= "\u9fff" for ch in f.message)  # zh-CN
        assert f.value is not None
    json.dumps(rule.snapshot())  # plain data


@pytest.mark.parametrize("make", range(len(all_rules())))
def test_snapshot_restore_mid_stream_gives_identical_findings(make: int) -> None:
    stream = contract_stream()
    acute = next(i for i, r in enumerate(stream) if r.ts >= T0 + timedelta(days=6))
    # Cut while warming up, while a drift accumulates, inside a window before it
    # raises, inside an open episode, while normal minutes count towards a clear.
    for cut in (len(stream) // 3, 3200, acute + 100, acute + 400, acute + 1000, acute + 1700):
        a = all_rules()[make]
        feed(a, stream[:cut])
        state = json.loads(json.dumps(a.snapshot()))  # through JSON, as a worker would
        frozen = copy.deepcopy(state)
        b = all_rules()[make]
        b.restore(state)
        assert state == frozen  # restore does not mutate its input
        restored = json.dumps(b.snapshot(), sort_keys=True)
        scramble(state)  # nor keep references into it
        assert json.dumps(b.snapshot(), sort_keys=True) == restored
        rest = stream[cut:]
        expect = feed(a, rest) + a.advance(T0 + timedelta(days=30))
        got = feed(b, rest) + b.advance(T0 + timedelta(days=30))
        assert got == expect
        assert json.dumps(a.snapshot(), sort_keys=True) == json.dumps(b.snapshot(), sort_keys=True)


def scramble(state: object) -> None:
    """Empty every list and dict inside ``state``, innermost first."""
    if isinstance(state, dict):
        for v in state.values():
            scramble(v)
        state.clear()
    elif isinstance(state, list):
        for v in state:
            scramble(v)
        state.clear()


@pytest.mark.parametrize("make", range(len(all_rules())))
def test_input_not_mutated_and_deterministic(make: int) -> None:
    stream = contract_stream()
    frozen = copy.deepcopy(stream)
    first = feed(all_rules()[make], stream)
    second = feed(all_rules()[make], stream)
    assert stream == frozen
    assert first == second


def test_rules_ignore_readings_they_do_not_use() -> None:
    from protocol.messages import Position, Status

    for rule in all_rules():
        assert rule.update(Position("w1", 1, T0, 34.9, 110.4, 10.0, "gps")) == []
        assert rule.update(Status("w1", T0, False)) == []
        assert rule.update(Event("w1", 2, T0, "sos")) == []
