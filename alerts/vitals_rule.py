"""Sustained NEWS2 rules: one per vital-sign parameter, and the "partial NEWS2" aggregate.

A single sample never raises.  Samples are grouped into event-time minutes; a minute
is *abnormal*, *normal* or *neutral* (not evidence either way, e.g. a fast pulse
while walking).  A condition is *sustained* when, inside the last ``window_minutes``,
at least ``min_count`` abnormal minutes span ``min_span_minutes`` and make up
``min_fraction`` of the observed minutes.  Counting minutes rather than samples keeps
the rule the same for a watch that reports every 5 s and one that reports every 5 min.

Lifecycle per rule (alarm fatigue is the failure mode to avoid): one RAISE when the
condition starts (``detail["episode"] == "open"``), then at most one reminder every
``reraise_minutes`` while it stays sustained ("reraise"), an immediate RAISE if the
severity goes up ("escalate"), and a CLEAR after ``clear_minutes`` of normal minutes.
A gap in the data neither raises nor clears: no evidence is no evidence.

While the device is off the wrist (``worn`` false, or an ``off_wrist`` event) samples
are ignored and the window restarts when it is back on.

>>> from datetime import datetime, timedelta, timezone
>>> from protocol.messages import Vitals
>>> rule = News2ParamRule("spo2")
>>> t0 = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)
>>> found = []
>>> for i in range(20):
...     found += rule.update(Vitals("w1", i, t0 + timedelta(minutes=i), spo2=89))
>>> [(f.action.value, f.severity.value, f.value, f.message) for f in found]
[('raise', 'high', 89.0, '血氧持续偏低 89%')]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from alerts.core import Action, Finding, Severity
from alerts.news2 import (
    PARAMS,
    Param,
    aggregate_severity,
    direction,
    parameter_severity,
    partial_news2,
    score_parameter,
)
from protocol.messages import Event, Reading, Vitals

ABNORMAL: Final = 1
NORMAL: Final = 0
NEUTRAL: Final = -1
_MINUTE: Final = 60


# --- settings ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SustainSettings:
    """How long a condition must hold before it raises, and when it is over."""

    window_minutes: int = 15
    min_count: int = 3  # abnormal minutes needed (also: normal minutes needed to clear)
    min_span_minutes: int = 10  # first to last abnormal minute inside the window
    min_fraction: float = 0.8  # abnormal / observed (non-neutral) minutes in the window
    clear_minutes: int = 60  # normal for this long -> CLEAR (shorter flaps on and off)
    reraise_minutes: int = 30  # reminder period while the condition lasts


@dataclass(frozen=True, slots=True)
class ActivitySettings:
    """What counts as "at rest", from the cumulative step count."""

    lookback_minutes: int = 10  # heart rate stays up for minutes after walking stops
    rest_max_steps: int = 20  # shuffling around the room is still rest
    stale_minutes: int = 30  # no step count this recent -> activity unknown
    assume_rest_if_unknown: bool = True  # no pedometer: judge as at rest (the safe side)


@dataclass(frozen=True, slots=True)
class VitalsSettings:
    """Per-elder NEWS2 settings.  ``hypercapnic`` selects SpO2 scale 2 (target 88-92 %)."""

    hypercapnic: bool = False
    on_oxygen: bool = False  # supplemental O2: scale 2 scores high SpO2; aggregate +2
    min_score: int = 3  # single-parameter trigger: RCP's "red score"
    aggregate_medium_at: int = 5
    aggregate_critical_at: int = 7
    # Age beyond which a parameter's last value no longer counts in the aggregate.
    max_age_minutes: dict[str, int] = field(
        default_factory=lambda: {"hr": 10, "spo2": 15, "rr": 15, "sbp": 240, "temp": 240}
    )
    sustain: SustainSettings = field(default_factory=SustainSettings)
    activity: ActivitySettings = field(default_factory=ActivitySettings)


# --- small plain-state helpers shared by the vital-sign rules ---------------------


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Activity:
    """At rest or not, from the protocol's cumulative "steps today" counter.

    Increments are attributed to the reading that revealed them; a counter that goes
    down is a new day (or a device reset), so its value is the increment.

    >>> a = Activity(ActivitySettings())
    >>> a.observe(0.0, 1000); a.observe(60.0, 1090); a.at_rest(60.0)
    False
    >>> a.observe(700.0, 1090); a.at_rest(700.0)
    True
    """

    def __init__(self, settings: ActivitySettings) -> None:
        self.settings = settings
        self.last_steps: int | None = None
        self.last_t: float | None = None
        self.incs: list[list[float]] = []  # [t, steps] of recent non-zero increments

    def observe(self, t: float, steps: int | None) -> None:
        if steps is None:
            return
        if self.last_steps is not None:
            inc = steps - self.last_steps if steps >= self.last_steps else steps
            if inc > 0:
                self.incs.append([t, float(inc)])
        self.last_steps = steps
        self.last_t = t
        horizon = t - self.settings.lookback_minutes * _MINUTE
        while self.incs and self.incs[0][0] <= horizon:
            self.incs.pop(0)

    def at_rest(self, t: float) -> bool | None:
        """True at rest, False active, None when no recent step count is known."""
        if self.last_t is None or t - self.last_t > self.settings.stale_minutes * _MINUTE:
            return None
        horizon = t - self.settings.lookback_minutes * _MINUTE
        recent = sum(s for ts, s in self.incs if ts > horizon)
        return recent <= self.settings.rest_max_steps

    def snapshot(self) -> dict[str, Any]:
        return {
            "last_steps": self.last_steps,
            "last_t": self.last_t,
            "incs": [list(x) for x in self.incs],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.last_steps = state["last_steps"]
        self.last_t = state["last_t"]
        self.incs = [list(x) for x in state["incs"]]


def worn_change(reading: Reading) -> bool | None:
    """The wear state a reading announces, if any (``worn`` field or wrist events)."""
    if isinstance(reading, Vitals):
        return reading.worn
    if isinstance(reading, Event):
        if reading.type == "off_wrist":
            return False
        if reading.type == "on_wrist":
            return True
    return None


class Sustain:
    """The N-of-M window over minute verdicts and the raise/re-raise/clear machine.

    ``push`` returns ``(episode, value, score)`` with episode one of ``open``,
    ``escalate``, ``reraise``, ``clear``, or None when nothing is to be said.
    """

    def __init__(self, settings: SustainSettings) -> None:
        self.s = settings
        self.window: list[list[float]] = []  # [minute, verdict, value, score]
        self.active = False
        self.last_raise: int | None = None
        self.raised_score = 0
        self.last_abnormal: int | None = None
        self.first_normal: int | None = None  # first normal minute since the last abnormal
        self.normals = 0  # normal minutes since the last abnormal

    def reset_window(self) -> None:
        """Forget the evidence (device off the wrist) but keep any open episode."""
        self.window = []

    def push(
        self, minute: int, verdict: int, value: float, score: int
    ) -> tuple[str, float, int] | None:
        s = self.s
        w = self.window
        w.append([minute, verdict, value, score])
        while w[0][0] <= minute - s.window_minutes:
            w.pop(0)
        if verdict == ABNORMAL:
            self.last_abnormal, self.first_normal, self.normals = minute, None, 0
        elif verdict == NORMAL:
            if self.first_normal is None:
                self.first_normal = minute
            self.normals += 1

        # Only an abnormal minute can make the condition sustained: most minutes are
        # normal, so the window is only scanned when it can matter.
        abnormal: list[list[float]] = []
        sustained = False
        if verdict == ABNORMAL:
            abnormal = [e for e in w if e[1] == ABNORMAL]
            sustained = (
                len(abnormal) >= s.min_count
                and abnormal[-1][0] - abnormal[0][0] >= s.min_span_minutes
                and len(abnormal) >= s.min_fraction * sum(1 for e in w if e[1] != NEUTRAL)
            )
        if sustained:
            typical = _median([e[2] for e in abnormal])
            score = int(sorted(e[3] for e in abnormal)[len(abnormal) // 2])
            if not self.active:
                self.active, self.last_raise, self.raised_score = True, minute, score
                return "open", typical, score
            if score > self.raised_score:
                self.last_raise, self.raised_score = minute, score
                return "escalate", typical, score
            assert self.last_raise is not None
            if minute - self.last_raise >= s.reraise_minutes:
                self.last_raise = minute
                return "reraise", typical, score
            return None
        if (
            self.active
            and verdict == NORMAL
            and self.first_normal is not None
            and minute - self.first_normal >= s.clear_minutes
            and self.normals >= s.min_count
        ):
            self.active, self.raised_score = False, 0
            return "clear", value, 0
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "window": [list(e) for e in self.window],
            "active": self.active,
            "last_raise": self.last_raise,
            "raised_score": self.raised_score,
            "last_abnormal": self.last_abnormal,
            "first_normal": self.first_normal,
            "normals": self.normals,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.window = [list(e) for e in state["window"]]
        self.active = state["active"]
        self.last_raise = state["last_raise"]
        self.raised_score = state["raised_score"]
        self.last_abnormal = state["last_abnormal"]
        self.first_normal = state["first_normal"]
        self.normals = state["normals"]


# --- the minute-binned rule skeleton ----------------------------------------------


class MinuteRule:
    """Shared skeleton: wear state, activity, one open minute bin, a ``Sustain``.

    Subclasses say which samples they take (``_take``) and what a closed minute means
    (``_verdict``), and word the finding (``_finding``).
    """

    kind = "vitals"
    # What the engine needs to feed it: positions and statuses change nothing here.
    accepts: ClassVar[frozenset[type]] = frozenset({Vitals, Event})

    def __init__(self, sustain: SustainSettings, activity: ActivitySettings) -> None:
        self._activity_settings = activity
        self.activity = Activity(activity)
        self.sustain = Sustain(sustain)
        self.worn = True
        self.bin_minute: int | None = None
        self.bin: dict[str, list[float]] = {}
        self.bin_last_t = 0.0
        self.late = 0  # samples older than the open minute (ordering is handled upstream)

    # -- Rule protocol --
    def update(self, reading: Reading) -> list[Finding]:
        change = worn_change(reading)
        if not isinstance(reading, Vitals):
            if change is not None:
                self._set_worn(change)
            return []
        t = reading.ts.timestamp()
        out = self._roll(t)
        if change is not None:
            self._set_worn(change)
        self.activity.observe(t, reading.steps)
        if not self.worn:
            return out
        samples = self._take(reading)
        if not samples:
            return out
        minute = int(t // _MINUTE)
        if self.bin_minute is not None and minute < self.bin_minute:
            self.late += 1
            return out
        if self.bin_minute is None:
            self.bin_minute = minute
        for name, v in samples:
            self.bin.setdefault(name, []).append(v)
        self.bin_last_t = t
        return out

    def advance(self, now: datetime) -> list[Finding]:
        return self._roll(now.timestamp())

    def next_due(self) -> float | None:
        """Earliest event time (epoch s) at which ``advance`` can do anything: the end
        of the open minute.  Before it ``advance`` is a no-op, so the engine skips it."""
        return None if self.bin_minute is None else float((self.bin_minute + 1) * _MINUTE)

    def snapshot(self) -> dict[str, Any]:
        # Fresh containers throughout: the caller may keep or change the result
        # without touching the rule (built by hand: ``copy.deepcopy`` is the slow part).
        return {
            "activity": self.activity.snapshot(),
            "sustain": self.sustain.snapshot(),
            "worn": self.worn,
            "bin_minute": self.bin_minute,
            "bin": {k: list(v) for k, v in self.bin.items()},
            "bin_last_t": self.bin_last_t,
            "late": self.late,
            **copy.deepcopy(self._extra_snapshot()),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.activity.restore(state["activity"])
        self.sustain.restore(state["sustain"])
        self.worn = state["worn"]
        self.bin_minute = state["bin_minute"]
        self.bin = {k: list(v) for k, v in state["bin"].items()}
        self.bin_last_t = state["bin_last_t"]
        self.late = state["late"]
        self._extra_restore(state)

    # -- internals --
    def _set_worn(self, worn: bool) -> None:
        if self.worn and not worn:
            self.sustain.reset_window()
            self.bin_minute, self.bin = None, {}
        self.worn = worn

    def _roll(self, t: float) -> list[Finding]:
        """Close the open minute if ``t`` is past it."""
        if self.bin_minute is None or int(t // _MINUTE) <= self.bin_minute:
            return []
        minute, values = self.bin_minute, self.bin
        self.bin_minute, self.bin = None, {}
        rest = self.activity.at_rest(self.bin_last_t)
        if rest is None:
            rest = self._activity_settings.assume_rest_if_unknown
        medians = {k: _median(v) for k, v in values.items()}
        verdict, value, score, info = self._verdict(minute, medians, rest)
        said = self.sustain.push(minute, verdict, value, score)
        if said is None:
            return []
        episode, typical, score = said
        found = self._finding(episode, typical, score, _dt((minute + 1) * _MINUTE), info)
        return [] if found is None else [found]

    def _take(self, reading: Vitals) -> list[tuple[str, float]]:
        raise NotImplementedError

    def _verdict(
        self, minute: int, medians: dict[str, float], rest: bool
    ) -> tuple[int, float, int, dict[str, Any]]:
        raise NotImplementedError

    def _finding(
        self, episode: str, value: float, score: int, ts: datetime, info: dict[str, Any]
    ) -> Finding | None:
        """The finding for an ``episode`` step, or None to stay silent."""
        raise NotImplementedError

    def _extra_snapshot(self) -> dict[str, Any]:
        return {}

    def _extra_restore(self, state: dict[str, Any]) -> None:
        return None


# --- one NEWS2 parameter ----------------------------------------------------------

_UNIT: Final[dict[str, str]] = {
    "hr": " 次/分",
    "rr": " 次/分",
    "sbp": " mmHg",
    "spo2": "%",
    "temp": " ℃",
}
_NAME: Final[dict[str, str]] = {
    "hr": "心率",
    "rr": "呼吸频率",
    "sbp": "收缩压",
    "spo2": "血氧",
    "temp": "体温",
}
# Exercise raises these on the high side; NEWS2 observations are taken at rest.
_EXERTION_HIGH: Final = frozenset({"hr", "rr"})


def format_value(param: str, value: float) -> str:
    """``value`` with its unit, as staff read it.

    >>> format_value("temp", 38.46), format_value("hr", 137.5)
    ('38.5 ℃', '138 次/分')
    """
    digits = 1 if param == "temp" else 0
    shown = f"{value:.{digits}f}" if digits else str(math.floor(value + 0.5))
    return f"{shown}{_UNIT[param]}"


def news2_message(param: str, value: float, low: bool, at_rest: bool | None = None) -> str:
    """One zh-CN line, e.g. ``心率持续偏高 138 次/分（静息）``."""
    word = "偏低" if low else "偏高"
    if param in ("hr", "rr") and low:
        word = "过低"
    suffix = "（静息）" if at_rest and not low and param in _EXERTION_HIGH else ""
    return f"{_NAME[param]}持续{word} {format_value(param, value)}{suffix}"


class News2ParamRule(MinuteRule):
    """Sustained NEWS2 band score of one parameter (``news2_hr``, ``news2_spo2``, ...).

    Raises at ``settings.min_score`` (default 3, the chart's red score).  For pulse and
    respiration the high side only counts at rest: a fast pulse while walking is
    normal and NEWS2 observations are taken at rest.
    """

    def __init__(self, param: Param, settings: VitalsSettings | None = None) -> None:
        if param not in PARAMS:
            raise ValueError(f"not a NEWS2 parameter: {param!r}")
        self.settings = settings or VitalsSettings()
        super().__init__(self.settings.sustain, self.settings.activity)
        self.param: Param = param
        self.kind = f"news2_{param}"
        self.last_rest = True

    def _take(self, reading: Vitals) -> list[tuple[str, float]]:
        v = getattr(reading, self.param)
        return [] if v is None else [(self.param, float(v))]

    def _score(self, value: float) -> int:
        s = self.settings
        return score_parameter(self.param, value, hypercapnic=s.hypercapnic, on_oxygen=s.on_oxygen)

    def _verdict(
        self, minute: int, medians: dict[str, float], rest: bool
    ) -> tuple[int, float, int, dict[str, Any]]:
        v = medians[self.param]
        score = self._score(v)
        self.last_rest = rest
        if score < self.settings.min_score:
            return NORMAL, v, score, {}
        high = direction(self.param, v, hypercapnic=self.settings.hypercapnic) == "high"
        if high and not rest and self.param in _EXERTION_HIGH:
            return NEUTRAL, v, score, {}
        return ABNORMAL, v, score, {}

    def _finding(
        self, episode: str, value: float, score: int, ts: datetime, info: dict[str, Any]
    ) -> Finding:
        s = self.settings
        low = direction(self.param, value, hypercapnic=s.hypercapnic) == "low"
        detail: dict[str, Any] = {
            "episode": episode,
            "param": self.param,
            "score": score,
            "direction": "low" if low else "high",
        }
        if self.param == "spo2":
            detail["spo2_scale"] = 2 if s.hypercapnic else 1
        if episode == "clear":
            return Finding(
                self.kind,
                Severity.LOW,
                ts,
                f"{_NAME[self.param]}已恢复正常 {format_value(self.param, value)}",
                Action.CLEAR,
                value,
                detail,
            )
        severity = parameter_severity(score) or Severity.LOW
        message = news2_message(self.param, value, low, at_rest=self.last_rest)
        if self.param == "spo2" and s.hypercapnic and not low:
            message = f"吸氧时血氧偏高 {format_value('spo2', value)}（量表 2）"
        return Finding(self.kind, severity, ts, message, Action.RAISE, value, detail)

    def _extra_snapshot(self) -> dict[str, Any]:
        return {"last_rest": self.last_rest}

    def _extra_restore(self, state: dict[str, Any]) -> None:
        self.last_rest = state["last_rest"]


# --- the aggregate ----------------------------------------------------------------


class PartialNews2Rule(MinuteRule):
    """Sustained aggregate NEWS2 over the parameters the watch measured (``news2_partial``).

    Each parameter's latest minute median counts while younger than its
    ``max_age_minutes`` (a blood pressure taken an hour ago still describes the elder;
    a pulse from an hour ago does not).  Pulse and respiration measured while active
    are left out: NEWS2 is scored on resting observations.  Consciousness cannot be
    observed, hence the "partial" label; oxygen adds 2 when the elder is flagged
    ``on_oxygen``.
    """

    kind = "news2_partial"

    def __init__(self, settings: VitalsSettings | None = None) -> None:
        self.settings = settings or VitalsSettings()
        super().__init__(self.settings.sustain, self.settings.activity)
        self.latest: dict[str, list[float]] = {}  # param -> [minute, median]
        self.last_scores: dict[str, int] = {}

    def _take(self, reading: Vitals) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        for p in PARAMS:
            v = getattr(reading, p)
            if v is not None:
                out.append((p, float(v)))
        return out

    def _verdict(
        self, minute: int, medians: dict[str, float], rest: bool
    ) -> tuple[int, float, int, dict[str, Any]]:
        s = self.settings
        for p, v in medians.items():
            if rest or p not in _EXERTION_HIGH:
                self.latest[p] = [minute, v]
            else:
                self.latest.pop(p, None)  # an exercising pulse says nothing at rest
        values: dict[str, float | None] = {}
        for p, (m, v) in list(self.latest.items()):
            if minute - m <= s.max_age_minutes.get(p, 15):
                values[p] = v
            else:
                del self.latest[p]
        agg = partial_news2(values, hypercapnic=s.hypercapnic, on_oxygen=s.on_oxygen)
        self.last_scores = dict(agg.scores)
        verdict = ABNORMAL if agg.total >= s.aggregate_medium_at else NORMAL
        return verdict, float(agg.total), agg.total, {}

    def _finding(
        self, episode: str, value: float, score: int, ts: datetime, info: dict[str, Any]
    ) -> Finding:
        s = self.settings
        detail: dict[str, Any] = {
            "episode": episode,
            "label": "partial NEWS2",
            "scores": dict(self.last_scores),
            "missing": [p for p in (*PARAMS, "consciousness") if p not in self.last_scores],
            "spo2_scale": 2 if s.hypercapnic else 1,
            "on_oxygen": s.on_oxygen,
        }
        total = int(value)
        if episode == "clear":
            return Finding(
                self.kind,
                Severity.LOW,
                ts,
                f"部分 NEWS2 评分已回落至 {total}",
                Action.CLEAR,
                value,
                detail,
            )
        severity = aggregate_severity(
            total, medium_at=s.aggregate_medium_at, critical_at=s.aggregate_critical_at
        )
        return Finding(
            self.kind,
            severity or Severity.MEDIUM,
            ts,
            f"部分 NEWS2 评分持续 {total} 分（未含意识评估）",
            Action.RAISE,
            value,
            detail,
        )

    def _extra_snapshot(self) -> dict[str, Any]:
        return {"latest": self.latest, "last_scores": self.last_scores}

    def _extra_restore(self, state: dict[str, Any]) -> None:
        self.latest = {k: list(v) for k, v in state["latest"].items()}
        self.last_scores = dict(state["last_scores"])
