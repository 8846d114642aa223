"""Heart rate judged together with activity.

A fast pulse while walking is normal; the same pulse sitting still for ten minutes
is not.  Activity comes from the protocol's cumulative step count (see
``vitals_rule.Activity``): an elder is *at rest* when the last ``lookback_minutes``
added at most ``rest_max_steps`` steps.

Three heart-rate rules, one kind each, built by ``heart_rate_rules``:

- ``news2_hr`` (``vitals_rule.News2ParamRule("hr")``): the NEWS2 pulse red score,
  bradycardia <= 40 at any activity, tachycardia >= 131 at rest -> high.
- ``hr_activity`` (``HrActivityRule``): resting pulse at or above ``rest_high``
  (120, the common consumer default "120 bpm for 10 minutes while inactive") but
  below the NEWS2 red band -> medium.  An episode whose typical pulse is already in
  the red band is left to ``news2_hr`` (kept open silently, so that it does not
  surface as a second alert when the pulse wavers below 131), so one tachycardia
  does not open two alerts.
- ``baseline_drift`` (``baseline.BaselineDriftRule``): the elder's own resting pulse
  per hour of day drifting up over hours to days -> low/medium.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> t0 = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)
>>> def run(rule, steps_per_min):
...     out = []
...     for i in range(40):
...         v = Vitals("w1", i, t0 + timedelta(minutes=i), hr=125, steps=i * steps_per_min)
...         out += rule.update(v)
...     return [(f.kind, f.severity.value, f.message) for f in out]
>>> run(HrActivityRule(), 0)
[('hr_activity', 'medium', '静息时心率持续偏快 125 次/分')]
>>> run(HrActivityRule(), 100)  # walking briskly: nothing to say
[]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.baseline import BaselineDriftRule, BaselineSettings
from alerts.core import Action, Finding, Rule, Severity
from alerts.news2 import PULSE_BANDS, band_score
from alerts.vitals_rule import (
    ABNORMAL,
    NEUTRAL,
    NORMAL,
    ActivitySettings,
    MinuteRule,
    News2ParamRule,
    SustainSettings,
    VitalsSettings,
    format_value,
)
from protocol.messages import Vitals


@dataclass(frozen=True, slots=True)
class HeartRateSettings:
    """Per-elder thresholds of the resting-tachycardia rule."""

    rest_high: float = 120.0  # bpm at rest that is "too fast" for this elder
    defer_at: float = 131.0  # NEWS2 pulse red band: episodes there are news2_hr's
    severity: Severity = Severity.MEDIUM
    sustain: SustainSettings = field(default_factory=SustainSettings)
    activity: ActivitySettings = field(default_factory=ActivitySettings)


class HrActivityRule(MinuteRule):
    """Sustained fast pulse that activity does not explain (kind ``hr_activity``)."""

    kind = "hr_activity"

    def __init__(self, settings: HeartRateSettings | None = None) -> None:
        self.settings = settings or HeartRateSettings()
        super().__init__(self.settings.sustain, self.settings.activity)
        self.deferred = False  # the open episode belongs to news2_hr

    def _take(self, reading: Vitals) -> list[tuple[str, float]]:
        return [] if reading.hr is None else [("hr", float(reading.hr))]

    def _verdict(
        self, minute: int, medians: dict[str, float], rest: bool
    ) -> tuple[int, float, int, dict[str, Any]]:
        v = medians["hr"]
        score = band_score(v, PULSE_BANDS)
        if v < self.settings.rest_high:
            return NORMAL, v, score, {}
        if not rest:
            return NEUTRAL, v, score, {}  # walking explains it
        return ABNORMAL, v, score, {}

    def _finding(
        self, episode: str, value: float, score: int, ts: datetime, info: dict[str, Any]
    ) -> Finding | None:
        red = value >= self.settings.defer_at
        if episode == "open" and red:
            self.deferred = True  # news2_hr reports this one, at high
        if self.deferred:
            if episode == "clear":
                self.deferred = False
            return None
        if red and episode != "clear":
            return None  # while in the red band the reminders are news2_hr's
        detail = {
            "episode": episode,
            "param": "hr",
            "at_rest": True,
            "rest_high": self.settings.rest_high,
            "news2_score": score,
        }
        if episode == "clear":
            return Finding(
                self.kind,
                Severity.LOW,
                ts,
                f"静息心率已恢复 {format_value('hr', value)}",
                Action.CLEAR,
                value,
                detail,
            )
        return Finding(
            self.kind,
            self.settings.severity,
            ts,
            f"静息时心率持续偏快 {format_value('hr', value)}",
            Action.RAISE,
            value,
            detail,
        )

    def _extra_snapshot(self) -> dict[str, Any]:
        return {"deferred": self.deferred}

    def _extra_restore(self, state: dict[str, Any]) -> None:
        self.deferred = state["deferred"]


def heart_rate_rules(
    vitals: VitalsSettings | None = None,
    heart_rate: HeartRateSettings | None = None,
    baseline: BaselineSettings | None = None,
) -> list[Rule]:
    """The three heart-rate rules of one elder: NEWS2 pulse, resting pulse, baseline drift."""
    return [
        News2ParamRule("hr", vitals),
        HrActivityRule(heart_rate),
        BaselineDriftRule(baseline),
    ]
