"""Spec tests of the fever rule: sustained temperature at or above 38 °C.

Synthetic streams with explicit timestamps on the community's local clock (UTC+8); a
thermometer reading every 5 minutes unless a test says otherwise (the simulator's
``TEMP_EVERY_S``).  No wall clock, no I/O.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

import alerts.fever
from alerts.core import Action, Finding, Severity
from alerts.fever import FeverRule, FeverSettings
from alerts.news2 import score_parameter
from alerts.ruleset import ElderProfile, build_rules
from protocol.messages import Event, Position, Reading, Vitals

LOCAL = timezone(timedelta(hours=8))
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=LOCAL).astimezone(UTC)


def temps(values: Sequence[float], *, start: datetime = T0, every_min: float = 5) -> list[Vitals]:
    step = timedelta(minutes=every_min)
    return [Vitals("w1", i, start + i * step, temp=c, hr=80) for i, c in enumerate(values)]


def feed(rule: FeverRule, readings: Iterable[Reading]) -> list[Finding]:
    out: list[Finding] = []
    for r in readings:
        out += rule.update(r)
    return out


def episodes(found: list[Finding]) -> list[str]:
    return [f.detail["episode"] for f in found]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_news2_alone_never_calls_a_fever() -> None:
    """Why the rule exists: NEWS2 gives 38.1-39.0 °C one point and > 39 °C two, below the
    single-parameter trigger of 3 -- a whole afternoon at 38.8 °C raises nothing there."""
    assert score_parameter("temp", 38.8) == 1 and score_parameter("temp", 39.4) == 2


def test_half_an_hour_at_or_above_38_raises_medium() -> None:
    # 10:00 36.9, 10:05 37.4, 10:10 38.1 (the run starts), ... 10:40 38.6: 30 minutes.
    found = feed(FeverRule(), temps([36.9, 37.4, 38.1, 38.3, 38.4, 38.5, 38.5, 38.6, 38.6, 38.7]))
    assert episodes(found) == ["open"]
    f = found[0]
    assert f.kind == "fever" and f.severity is Severity.MEDIUM and f.action is Action.RAISE
    assert f.ts == at(40) and f.message == "持续发热 38.6℃" and f.value == 38.6
    assert f.detail["febrile_since"] == at(10).isoformat() and f.detail["max_c"] == 38.6


def test_not_before_thirty_minutes() -> None:
    assert feed(FeverRule(), temps([38.4] * 6)) == []  # 10:00-10:25: 25 minutes
    assert episodes(feed(FeverRule(), temps([38.4] * 7))) == ["open"]


def test_a_single_hot_reading_is_not_a_fever() -> None:
    stream = temps([36.8, 36.9, 38.9, 36.9, 36.8] + [36.9] * 20)
    assert feed(FeverRule(), stream) == []


def test_a_normal_reading_breaks_the_run_but_a_warm_one_does_not() -> None:
    broken = [38.2, 38.3, 38.2, 37.3, 38.2, 38.3, 38.2, 38.4]  # 37.3 at 10:15 breaks it
    assert feed(FeverRule(), temps(broken)) == []
    warm = [38.2, 38.3, 37.8, 37.6, 37.9, 38.1, 38.2]  # 37.6-37.9: still febrile-ish
    found = feed(FeverRule(), temps(warm))
    assert episodes(found) == ["open"] and found[0].ts == at(30)


def test_an_hourly_thermometer_is_enough() -> None:
    found = feed(FeverRule(), temps([37.0, 38.3, 38.5, 38.4], every_min=60))
    assert episodes(found) == ["open"] and found[0].ts == at(120)


def test_two_hot_readings_hours_apart_with_nothing_between_are_not_sustained() -> None:
    stream = temps([38.5]) + temps([38.5, 37.0], start=at(180))
    assert feed(FeverRule(), stream) == []
    # Without the gap limit the two readings would make a three-hour "fever".
    lax = FeverRule(FeverSettings(max_gap_minutes=1e6))
    assert episodes(feed(lax, stream)) == ["open"]


def test_high_at_39_sustained_and_escalated() -> None:
    found = feed(FeverRule(), temps([39.2] * 8))
    assert episodes(found) == ["open"] and found[0].severity is Severity.HIGH
    # One 39.1 among 38s is not HIGH; two running are.
    rule = FeverRule()
    found = feed(rule, temps([38.5] * 7 + [39.1, 38.7, 38.8, 39.0, 39.2, 38.9]))
    assert episodes(found) == ["open", "escalate"]
    assert [f.severity for f in found] == [Severity.MEDIUM, Severity.HIGH]
    assert found[1].ts == at(55) and found[1].message == "持续发热 39.2℃"


def test_clear_after_an_hour_of_normal_readings() -> None:
    rule = FeverRule()
    feed(rule, temps([38.6] * 7))  # open at 10:30
    down = temps([37.4, 37.2, 37.0, 36.9, 37.6, 37.1] + [36.9] * 12, start=at(35))
    found = feed(rule, down)
    # 37.6 at 10:55 restarts the hour: normal again from 11:00, CLEAR at 12:00.
    assert episodes(found) == ["clear"]
    assert found[0].ts == at(120) and found[0].action is Action.CLEAR
    assert found[0].message == "体温已恢复正常 36.9℃"
    assert found[0].severity is Severity.MEDIUM


def test_a_long_fever_reminds_every_two_hours_not_every_reading() -> None:
    found = feed(FeverRule(), temps([38.6] * 80))  # 10:00 to 16:35
    assert episodes(found) == ["open", "reraise", "reraise", "reraise"]
    assert [f.ts for f in found] == [at(30), at(150), at(270), at(390)]


def test_not_judged_while_not_worn() -> None:
    rule = FeverRule()
    stream: list[Reading] = [*temps([38.5] * 4)]  # 10:00-10:15
    stream.append(Event("w1", 90, at(17), "off_wrist"))
    # A warm watch lying in the sun reports 38.5: not the elder.
    stream += [Vitals("w1", 100 + i, at(20 + 5 * i), temp=38.5) for i in range(8)]
    stream.append(Event("w1", 91, at(60), "on_wrist"))
    stream += temps([38.5] * 6, start=at(60))  # back on at 11:00: a new run, 25 minutes
    assert feed(rule, stream) == []
    found = rule.update(Vitals("w1", 200, at(90), temp=38.6))
    assert episodes(found) == ["open"] and found[0].detail["febrile_since"] == at(60).isoformat()
    # A sample that says it is off the wrist is not judged either.
    off = [Vitals("w1", i, at(5 * i), temp=38.5, worn=False) for i in range(10)]
    assert feed(FeverRule(), off) == []


def test_out_of_order_and_other_readings_are_ignored() -> None:
    rule = FeverRule()
    feed(rule, temps([38.5] * 6))
    assert rule.update(Vitals("w1", 50, at(-60), temp=36.5)) == []  # old: no break
    assert rule.update(Position("w1", 51, at(26), 34.867, 110.447, 5.0, "gps")) == []
    assert episodes(rule.update(Vitals("w1", 52, at(30), temp=38.5))) == ["open"]
    assert rule.advance(at(600)) == [] and rule.next_due() is None
    assert Position not in FeverRule.accepts and Vitals in FeverRule.accepts


def test_settings_are_per_elder() -> None:
    stream = temps([37.9] * 8)
    assert feed(FeverRule(), stream) == []
    assert episodes(feed(FeverRule(FeverSettings(fever_c=37.8)), stream)) == ["open"]
    rules = build_rules(ElderProfile(1, thresholds={"fever": {"fever_c": 37.8}}))
    (fever,) = [r for r in rules if r.kind == "fever"]
    assert isinstance(fever, FeverRule) and fever.settings.fever_c == 37.8
    assert isinstance(next(r for r in build_rules(ElderProfile(2)) if r.kind == "fever"), FeverRule)


def test_snapshot_restore_mid_episode() -> None:
    stream = temps([38.6] * 7 + [37.0] * 14)
    whole = feed(FeverRule(), stream)
    a = FeverRule()
    first = feed(a, stream[:9])
    b = FeverRule()
    b.restore(a.snapshot())
    assert first + feed(b, stream[9:]) == whole
    assert episodes(whole) == ["open", "clear"]


@pytest.mark.parametrize("module", [alerts.fever])
def test_docstring_examples(module: object) -> None:
    failed, attempted = doctest.testmod(module)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0
